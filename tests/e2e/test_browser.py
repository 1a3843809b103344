"""End to end in a real browser: upload a dataset, configure a tiny run, train it, inspect the negatives, compare
base and fine-tuned models, and screenshot every tab into test-artifacts/screenshots/.

Elements are found the way a person finds them (tab names, button texts, component labels); plots are read through
the plotly div's `data` (trace names are the contract of studio/plots.py: the loss curve is the trace "loss").
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import pytest

from core.config.schema import build_config
from studio.app import initial_config
from studio.tabs.config import LABELS
from tests.conftest import SAMPLES, read_jsonl, write_jsonl

pytestmark = pytest.mark.e2e

ROWS = 40
DATASET_NAME = "e2e_pairs.jsonl"
TRAIN_TIMEOUT_MS = 300_000
SEARCH_TIMEOUT_MS = 120_000

PLOT_POINTS_JS = """([title, trace]) => {
  for (const el of document.querySelectorAll('.js-plotly-plot')) {
    const t = el.layout && el.layout.title;
    if ((t && (t.text || t)) !== title) continue;
    const tr = (el.data || []).find(d => d.name === trace);
    const svg = el.querySelectorAll('.scatterlayer .trace path.point').length;
    return {points: tr ? (tr.x || []).length : 0, svg, traces: (el.data || []).map(d => d.name)};
  }
  return null;
}"""


# ---------------------------------------------------------------- locating things as a person would


def tab(page: Any, name: str) -> Any:
    """A top-level studio tab by its name ("Data", "Config", …), with or without its "1 · " number."""
    return page.get_by_role("tab", name=re.compile(rf"^(\d+\s*·\s*)?{re.escape(name)}\b"))


def open_tab(page: Any, name: str) -> None:
    t = tab(page, name)
    t.click()
    page.wait_for_function("el => el.getAttribute('aria-selected') === 'true'", arg=t.element_handle())


def block(page: Any, label: str) -> Any:
    """The component block whose label starts with `label` (File, Plot, Dataframe, Code, …)."""
    title = page.locator("[data-testid=block-label], [data-testid=block-title], label, span").filter(
        has_text=re.compile(rf"^\s*{re.escape(label)}")
    )
    return page.locator("div.block").filter(has=title).last


def form_field(page: Any, key: str) -> Any:
    """A Config-form field by its key, found by its label in words (studio.tabs.config.LABELS): a number box
    (spinbutton) or, for optional keys, a text box whose name is the label followed by its help text."""
    label = LABELS.get(key, key)
    return page.get_by_role("spinbutton", name=label, exact=True).or_(
        page.get_by_role("textbox", name=re.compile(rf"^{re.escape(label)}(\s|$)"))
    )


def shot(page: Any, folder: Path, name: str) -> Path:
    path = folder / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    print(f"  screenshot {path}")
    return path


def toasts(page: Any) -> list[dict[str, str]]:
    return page.evaluate("() => window.__toasts || []")


BENIGN_JS = ("ResizeObserver loop",)  # the browser's own notice when a layout settles over two frames


def assert_no_errors(page: Any, where: str) -> None:
    """No error toast and no uncaught JS error so far; other toasts are printed once (some are expected)."""
    seen = toasts(page)
    printed = getattr(page, "toasts_printed", 0)
    for t in seen[printed:]:
        print(f"  toast ({t['type']}) by {where}: {t['text']}")
    page.toasts_printed = len(seen)
    errors = [t["text"] for t in seen if t["type"] == "error"]
    js = [e for e in page.evaluate("() => window.__errors || []") if not e.startswith(BENIGN_JS)]
    assert not errors, f"error toast(s) by {where}: {errors}"
    assert not js, f"uncaught JS error(s) by {where}: {js}"


def grid(page: Any, label: str) -> Any:
    """A gr.Dataframe by its label: Gradio renders it as role=grid named by the label."""
    return page.get_by_role("grid", name=re.compile(rf"^{re.escape(label)}"))


def table_rows(page: Any, label: str) -> int:
    """Data rows of a gr.Dataframe (aria-rowcount counts the header too; the table itself is virtualised)."""
    g = grid(page, label)
    return int(g.get_attribute("aria-rowcount") or 1) - 1 if g.count() == 1 else 0


def wait_rows(page: Any, label: str, at_least: int = 1, timeout: int = 30_000) -> int:
    deadline = time.monotonic() + timeout / 1000
    while (n := table_rows(page, label)) < at_least:
        assert time.monotonic() < deadline, f"table {label!r} has {n} rows, expected >= {at_least}"
        page.wait_for_timeout(250)
    return n


# ---------------------------------------------------------------- the test


def tiny_yaml(tmp: Path, dataset: Path) -> str:
    """The studio's start-up config with everything that makes a run short, and every output in `tmp`."""
    cfg = initial_config()
    cfg.update(
        dataset_path=str(dataset),
        dataset_name=Path(DATASET_NAME).stem,
        max_seq_length=32,
        batch_size=8,
        num_epochs=1,
        test_size=0.25,
        output_dir=str(tmp / "model"),
        cache_dir=str(tmp / "cache"),
        runs_dir=str(tmp / "runs"),
    )
    cfg["mining"] = {**cfg.get("mining", {}), "num_negatives": 1, "margin": 0.1, "batch_size": 32}
    return build_config(cfg).to_yaml()


def test_studio_end_to_end(page: Any, studio: Any, screenshots: Path) -> None:
    from playwright.sync_api import expect

    t0 = time.monotonic()
    dataset = write_jsonl(studio.tmp / DATASET_NAME, read_jsonl(SAMPLES / "it_helpdesk_pairs.jsonl")[:ROWS])
    page.goto(studio.url)
    expect(tab(page, "Data")).to_be_visible(timeout=60_000)

    # ---- Data: upload the 40-row cut and see its validation report
    upload = block(page, "Dataset file").locator("input[type=file]")
    expect(upload).to_have_count(1)
    upload.set_input_files(str(dataset))
    expect(page.get_by_text(re.compile(rf"{re.escape(DATASET_NAME)}.*selected: pairs, {ROWS} rows"))).to_be_visible(
        timeout=60_000
    )
    expect(page.get_by_text("Statistics", exact=True)).to_be_visible()
    page.wait_for_function(  # the histogram is redrawn from the uploaded file: one query length per row
        f"() => {{ const r = ({PLOT_POINTS_JS})(['Token lengths per field', 'query']); return r && r.points === {ROWS}; }}"
    )
    assert wait_rows(page, "Preview") >= 1
    assert_no_errors(page, "data upload")
    shot(page, screenshots, "1_data")

    # ---- Config: replace the YAML with a tiny run's config, apply it, see the form follow
    open_tab(page, "Config")
    editor = block(page, "config.yaml").locator(".cm-content")
    editor.click()
    page.keyboard.press("ControlOrMeta+a")
    page.keyboard.press("Delete")
    page.keyboard.insert_text(tiny_yaml(studio.tmp, dataset))
    page.get_by_role("button", name="Apply YAML").click()
    command = block(page, "Copy as command")
    for item in ("max_seq_length=32", "batch_size=8", "mining.margin=0.1", str(studio.tmp / "model")):
        expect(command).to_contain_text(item, timeout=15_000)
    expect(page.get_by_text("Not applied")).to_have_count(0)
    for key, value in {"max_seq_length": "32", "batch_size": "8", "mining.margin": "0.1"}.items():
        expect(form_field(page, key)).to_have_value(value)
    assert_no_errors(page, "config")
    shot(page, screenshots, "2_config")

    # ---- Train: start, see the loss curve grow, wait for the run to finish
    open_tab(page, "Train")
    page.get_by_role("button", name="Start training").click()
    started = page.get_by_text(re.compile(r"^Started \S+\.$"))  # "Started `<run id>`." rendered as Markdown
    expect(started).to_be_visible(timeout=30_000)
    run_id = re.fullmatch(r"Started (\S+)\.", started.inner_text().strip()).group(1)
    loss = page.wait_for_function(
        f"() => {{ const r = ({PLOT_POINTS_JS})(['Training loss', 'loss']); return r && r.points > 0 && r; }}",
        timeout=TRAIN_TIMEOUT_MS,
        polling=500,
    ).json_value()
    print(f"  first loss points after {time.monotonic() - t0:.0f}s: {loss}")
    progress = page.get_by_text(re.compile(rf"{re.escape(run_id)}: (finished|failed|stopped|interrupted)"))
    expect(progress).to_be_visible(timeout=TRAIN_TIMEOUT_MS)
    state = progress.inner_text()
    assert ": finished" in state, (
        f"run ended as {state!r}; log:\n{block(page, 'Log').locator('textarea').input_value()}"
    )
    expect(page.get_by_text(re.compile(r"Before / after"))).to_be_visible(timeout=30_000)
    loss = page.evaluate(PLOT_POINTS_JS, ["Training loss", "loss"])
    assert loss["points"] >= 2 and loss["svg"] >= 2, loss  # data in the figure and markers drawn
    print(f"  training finished after {time.monotonic() - t0:.0f}s: {loss}")
    assert_no_errors(page, "training")
    shot(page, screenshots, "3_train")

    # ---- Negatives: the run's mined negatives, loaded by the tab itself when the run ended.
    open_tab(page, "Negatives")
    expect(page.get_by_text(re.compile(rf"Run {re.escape(run_id)} ·"))).to_be_visible(timeout=30_000)
    assert wait_rows(page, "Mined negatives") >= 1
    assert_no_errors(page, "negatives")
    shot(page, screenshots, "4_negatives")

    # ---- Compare: search with the base model (A) and the fine-tuned one (B)
    open_tab(page, "Compare")
    # Model B follows the run: once it has ended, the run's own copy of its model (output_dir is overwritten by the
    # next training).
    fine_tuned = re.compile(rf"^.*{re.escape(run_id)}/model$")
    expect(page.get_by_role("combobox", name=re.compile(r"^Model B"))).to_have_value(fine_tuned, timeout=30_000)
    expect(page.get_by_role("combobox", name=re.compile(r"^Model A"))).to_have_value(re.compile("all-MiniLM-L6-v2"))
    page.get_by_role("tab", name="Search", exact=True).click()
    page.get_by_role("combobox", name=re.compile(r"^Test-split queries")).click()  # pick a held-out query
    option = page.get_by_role("option").first
    query_text = option.inner_text().strip()
    option.click()
    expect(page.get_by_role("textbox", name="Query", exact=True)).to_have_value(query_text)
    page.get_by_role("button", name="Search with both models").click()
    expect(page.get_by_text(re.compile(r"Searched \d+ documents .*test-split query"))).to_be_visible(
        timeout=SEARCH_TIMEOUT_MS
    )
    rows_a, rows_b = wait_rows(page, "Model A"), wait_rows(page, "Model B")
    assert rows_a >= 1 and rows_b >= 1, (rows_a, rows_b)
    for side in ("Model A", "Model B"):  # the held-out query's gold document is marked on both sides (k=10 of 40)
        expect(grid(page, side)).to_contain_text("★ gold")
    assert_no_errors(page, "compare search")
    shot(page, screenshots, "5_compare")

    # ---- Export & runs: the history, redrawn when the run ended, lists it as finished.
    open_tab(page, "Export")
    expect(grid(page, "Runs")).to_contain_text(run_id, timeout=30_000)
    expect(grid(page, "Runs")).to_contain_text("finished")
    assert_no_errors(page, "export")
    shot(page, screenshots, "6_export")

    print(f"  console errors: {page.console_errors or 'none'}")
    print(f"  end to end in {time.monotonic() - t0:.0f}s")

"""A stranger's first visit to the public studio (issue 24), in a real browser: their work survives a reload, a
second tab and the next visit; the page shows no server path; pickers offer only what works and errors stay on the
panel; one upload limit; help in words; bad files explained; every tab reachable on a phone; the download-link
policy stated. One public studio serves the module; each test is a new visitor (a new browser context)."""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from core.config.schema import EmbedConfig
from studio.files import ROOT
from tests.e2e.conftest import WATCH_SCRIPT, _free_port
from tests.e2e.test_browser import block, form_field, open_tab, shot, tab, toasts

pytestmark = pytest.mark.e2e

LOAD_MS = 60_000


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimpleNamespace]:
    from studio.app import create_app, launch_kwargs

    tmp = tmp_path_factory.mktemp("first-visit")
    demo = create_app(workspace=tmp / "workspace", runs_dir=tmp / "runs", public=True)
    demo.queue(default_concurrency_limit=4)
    port = _free_port()
    demo.launch(
        prevent_thread_lock=True,
        server_name="127.0.0.1",
        server_port=port,
        share=False,
        quiet=True,
        **launch_kwargs(public=True),
    )
    yield SimpleNamespace(url=f"http://127.0.0.1:{port}/", tmp=tmp)
    demo.close()


def visit(browser: Any, site: SimpleNamespace, width: int = 1280, height: int = 900) -> Any:
    """A new visitor (a browser context of their own) on the studio's first page."""
    context = browser.new_context(viewport={"width": width, "height": height})
    context.add_init_script(WATCH_SCRIPT)
    context.set_default_timeout(30_000)
    page = context.new_page()
    page.goto(site.url)
    page.get_by_text("Public mode").wait_for(timeout=LOAD_MS)
    page.wait_for_timeout(1500)  # the load event has bound the visitor and restored what they left
    return page


def claims_csv(folder: Path, rows: int = 160, name: str = "claims.csv") -> Path:
    path = folder / name
    with path.open("w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(["query", "document"])
        for i in range(rows):
            w.writerow([f"Is claim {i} covered when the {i % 7}th window breaks?", f"Policy {i}: windows are covered."])
    return path


def upload(page: Any, label: str, path: Path) -> None:
    block(page, label).locator("input[type=file]").set_input_files(str(path))


def all_text(page: Any) -> str:
    """Every text of the page, hidden tabs, editors and input values included."""
    return page.evaluate(
        "() => document.body.textContent + ' ' + [...document.querySelectorAll('input, textarea')]"
        ".map(e => e.value).join(' ')"
    )


def test_reload_second_tab_and_next_visit_keep_the_visitors_work(browser: Any, site: Any, screenshots: Path) -> None:
    """Finding 1: dataset, config and Compare inputs come back; a stranger sees none of it."""
    from playwright.sync_api import expect

    data = claims_csv(site.tmp)
    page = visit(browser, site)
    upload(page, "Dataset file", data)
    expect(page.get_by_text(re.compile(r"claims\.csv.*selected: pairs, 160 rows"))).to_be_visible(timeout=LOAD_MS)
    open_tab(page, "Config")
    epochs = form_field(page, "num_epochs")
    epochs.fill("2")
    epochs.press("Tab")
    expect(block(page, "config.yaml")).to_contain_text("num_epochs: 2", timeout=LOAD_MS)  # a busy server is slow
    open_tab(page, "Compare")
    text_a = page.get_by_label("Text A", exact=True)
    text_a.fill("Is hail damage to my roof covered?")
    text_a.press("Tab")
    page.wait_for_timeout(1500)

    def shows_what_was_left(p: Any) -> None:
        expect(p.get_by_text(re.compile(r"claims\.csv.*selected: pairs, 160 rows"))).to_be_visible(timeout=LOAD_MS)
        open_tab(p, "Config")
        expect(form_field(p, "num_epochs")).to_have_value("2")
        expect(block(p, "config.yaml")).to_contain_text("dataset_path: uploads/claims.csv")
        open_tab(p, "Compare")
        expect(p.get_by_label("Text A", exact=True)).to_have_value("Is hail damage to my roof covered?")

    page.reload()
    expect(tab(page, "Data")).to_be_visible(timeout=LOAD_MS)
    shows_what_was_left(page)
    second = page.context.new_page()  # a second tab of the same browser: the same visitor
    second.goto(site.url)
    shows_what_was_left(second)
    shot(second, screenshots, "first_visit_second_tab")

    stranger = visit(browser, site)
    expect(stranger.get_by_text(re.compile(r"it_helpdesk_pairs\.jsonl.*selected"))).to_be_visible()
    assert "claims.csv" not in all_text(stranger)
    open_tab(stranger, "Config")
    expect(form_field(stranger, "num_epochs")).to_have_value("1")


def test_no_server_path_on_a_public_page(browser: Any, site: Any) -> None:
    """Finding 2: YAML, command, pickers, messages and the saved config name the visitor's files, not the server's."""
    from playwright.sync_api import expect

    page = visit(browser, site)
    upload(page, "Dataset file", claims_csv(site.tmp, name="paths.csv"))
    expect(page.get_by_text(re.compile(r"paths\.csv.*selected"))).to_be_visible(timeout=LOAD_MS)
    open_tab(page, "Config")
    expect(block(page, "config.yaml")).to_contain_text("dataset_path: uploads/paths.csv")
    command = block(page, "Copy as command")
    expect(command).to_contain_text("EMBED_CONFIG=my_config.yaml")
    page.get_by_role("button", name="Save config").click()
    link = block(page, "Saved config").locator("a[href]").first
    expect(link).to_be_visible()
    saved = page.request.get(link.get_attribute("href")).text()
    assert "dataset_path: uploads/paths.csv" in saved
    open_tab(page, "Compare")
    page.get_by_role("button", name="↻ models").click()
    page.get_by_role("button", name="Compare similarity").click()
    expect(page.get_by_text(re.compile(r"⚠️ .*outputs/embedding_model"))).to_be_visible(timeout=LOAD_MS)
    for name in ("Train", "Negatives", "Search your documents", "Export"):  # each tab drawn once opened
        open_tab(page, name)
    page.get_by_role("button", name="Build zip").click()
    expect(page.get_by_text(re.compile(r"⚠️ No model at"))).to_be_visible(timeout=LOAD_MS)
    text = all_text(page) + saved
    for secret in (str(site.tmp), "/visitors/", "visitors/", str(ROOT)):
        assert secret not in text, f"{secret!r} shown to a visitor"


def test_pickers_offer_only_usable_models_and_errors_stay_on_the_panel(browser: Any, site: Any) -> None:
    """Finding 3: no "needs download" model offered; the untrained default says so in the list and in the panel."""
    from playwright.sync_api import expect

    page = visit(browser, site)
    open_tab(page, "Compare")
    page.get_by_role("button", name="↻ models").click()
    model_b = page.get_by_label("Model B (e.g. the fine-tuned model)")
    expect(model_b).to_have_value(re.compile(r"not trained yet"))
    model_b.click()
    options = page.get_by_role("option")
    expect(options.first).to_be_visible()
    offered = options.all_inner_texts()
    page.keyboard.press("Escape")
    assert offered and not [o for o in offered if "needs download" in o], offered
    page.get_by_role("button", name="Compare similarity").click()
    refusal = page.get_by_text(re.compile(r"⚠️ .*no model at 'outputs/embedding_model' yet: train a model first"))
    expect(refusal).to_be_visible(timeout=LOAD_MS)
    page.wait_for_timeout(6000)  # a toast would be gone by now: the panel still says it
    expect(refusal).to_be_visible()
    page.get_by_role("tab", name="Search", exact=True).click()
    page.get_by_role("textbox", name="Query", exact=True).fill("my laptop will not start")
    page.get_by_role("button", name="Search with both models").click()
    expect(page.get_by_text(re.compile(r"⚠️ .*no model at 'outputs/embedding_model' yet")).nth(1)).to_be_visible()
    assert "not cached" not in all_text(page)


def test_one_upload_limit_and_an_over_size_file_is_refused_on_the_panel(browser: Any, site: Any) -> None:
    """Finding 5: every box states the header's limit; a 25 MB file is refused with the reason on the panel."""
    from playwright.sync_api import expect

    page = visit(browser, site)
    expect(page.get_by_text("uploads ≤ 20 MB")).to_be_visible()
    expect(page.get_by_text("Dataset file (max 20 MB)")).to_be_visible()
    expect(page.get_by_text(re.compile(r"Optional corpus .*max 20 MB"))).to_be_visible()
    big = site.tmp / "big.csv"
    with big.open("w", encoding="utf-8") as f:
        f.write("query,document\n")
        line = "a question about windows," + "x" * 1000 + "\n"
        f.write(line * (25 * 1024 * 1024 // len(line) + 1))
    upload(page, "Dataset file", big)
    expect(
        page.get_by_text(re.compile(r"❌ Refused: big\.csv is 25\.\d MB; uploads are limited to 20 MB"))
    ).to_be_visible(timeout=LOAD_MS)
    upload(page, "Optional corpus", big)
    expect(
        page.get_by_text(re.compile(r"❌ Corpus refused: big\.csv is 25\.\d MB; uploads are limited to 20 MB"))
    ).to_be_visible(timeout=LOAD_MS)


def test_help_is_written_in_words(browser: Any, site: Any) -> None:
    """Finding 8: labels are words with the key in the help, no project files cited, defaults stated truly."""
    from playwright.sync_api import expect

    from core.models.devices import max_processes

    page = visit(browser, site)
    open_tab(page, "Config")
    expect(page.get_by_role("spinbutton", name="Epochs", exact=True)).to_be_visible()
    expect(page.get_by_text(re.compile(r"\(config key: mining\.margin\)"))).to_be_visible()
    expect(page.get_by_text(re.compile(r"Fraction of steps with a linear warm-up\. 0 by default"))).to_be_visible()
    open_tab(page, "Negatives")  # a tab's content is drawn once it has been opened
    text = all_text(page)
    open_tab(page, "Config")
    labels = [t.strip() for t in page.locator("[data-testid=block-info]").all_inner_texts()]
    assert "Epochs" in labels and "Margin to the positive" in labels, labels
    raw = [t for t in labels if re.fullmatch(r"[a-z_]+(\.[a-z_]+)*", t)]
    assert not raw, f"config keys used as labels: {raw}"
    for cited in ("BENCHMARKS.md", "MedQuAD", "python -m core mine", "None by default", "(default "):
        assert cited not in text, cited
    negatives = EmbedConfig().mining.num_negatives  # the Negatives tab's number of hard negatives, as the schema has it
    assert f"{negatives} by default" in text
    open_tab(page, "Train")
    if max_processes() <= 1:
        expect(page.get_by_text("one training process per GPU")).to_be_hidden()
        assert "data-parallel" not in page.locator("body").inner_text()


def test_bad_files_are_explained(browser: Any, site: Any) -> None:
    """Finding 9: a cp1252 file says how to fix it and clears the stale statistics; a huge cell is reported and the
    histogram stays on its axis; a pasted book in Similarity says what was not read."""
    from playwright.sync_api import expect

    page = visit(browser, site)
    expect(page.get_by_text("Statistics", exact=True)).to_be_visible()  # the sample's
    latin = site.tmp / "latin.csv"
    latin.write_bytes("query,document\nCafé hours?,The café opens at nine.\n".encode("cp1252"))
    upload(page, "Dataset file", latin)
    expect(page.get_by_text(re.compile(r"Refused .*latin\.csv"))).to_be_visible(timeout=LOAD_MS)
    expect(page.get_by_role("grid", name=re.compile("^Errors"))).to_contain_text(
        re.compile(r"cp1252.*Save it as UTF-8")
    )
    expect(page.get_by_text("Statistics", exact=True)).to_be_hidden()  # not the refused file's: cleared

    huge = site.tmp / "huge.csv"
    with huge.open("w", encoding="utf-8") as f:
        f.write("query,document\n")
        for i in range(30):
            f.write(f"question {i} about policies,answer {i}\n")
        f.write("a very long one," + "word " * 300_000 + "\n")
    upload(page, "Dataset file", huge)
    expect(page.get_by_text(re.compile(r"huge\.csv.*selected"))).to_be_visible(timeout=LOAD_MS)
    expect(page.get_by_text(re.compile(r"over 100,000 characters"))).to_be_visible()
    x_start = page.evaluate(
        """() => { for (const el of document.querySelectorAll('.js-plotly-plot')) {
             if (((el.layout.title || {}).text || '').startsWith('Token lengths')) return el._fullLayout.xaxis2
               ? Math.min(el._fullLayout.xaxis.range[0], el._fullLayout.xaxis2.range[0]) : el._fullLayout.xaxis.range[0];
           } return null; }"""
    )
    assert x_start is not None and x_start >= 0, x_start

    open_tab(page, "Compare")
    model_b = page.get_by_label("Model B (e.g. the fine-tuned model)")
    model_b.fill("sentence-transformers/all-MiniLM-L6-v2")
    model_b.press("Enter")
    page.get_by_label("Text A", exact=True).fill("policy " * 20_000)
    page.get_by_label("Text B (or several, one per line)").fill("A short text")
    page.get_by_role("button", name="Compare similarity").click()
    expect(
        page.get_by_text(re.compile(r"Text A has 140,000 characters.*read only its first \d+ tokens"))
    ).to_be_visible(timeout=LOAD_MS)


def test_every_tab_and_table_is_readable_on_a_phone(browser: Any, site: Any, screenshots: Path) -> None:
    """Finding 10: at 390x844 all seven tabs are in view (no "⋯" menu) and the Negatives table's headers are whole."""
    from playwright.sync_api import expect

    page = visit(browser, site, 390, 844)
    tabs = page.get_by_role("tab")
    expect(tabs).to_have_count(7)
    for name in ("Data", "Config", "Train", "Negatives", "Compare", "Export", "Search your documents"):
        expect(tab(page, name)).to_be_visible()
    assert not page.get_by_role("button", name="More tabs").is_visible()
    open_tab(page, "Negatives")
    page.get_by_role("button", name=re.compile("Mine now")).click()
    expect(page.get_by_text(re.compile(r"Mined into"))).to_be_visible(timeout=180_000)
    clipped = page.evaluate(
        """() => [...document.querySelectorAll('[role=columnheader], th')]
             .filter(h => h.offsetParent !== null && h.innerText.trim())
             .filter(h => h.scrollWidth > h.clientWidth + 1).map(h => h.innerText.trim())"""
    )
    shot(page, screenshots, "first_visit_phone_negatives")
    assert not clipped, f"headers cut off on a phone: {clipped}"


def test_the_download_link_policy_is_stated(browser: Any, site: Any) -> None:
    """Finding 11: the Export tab and the README say who can use a download link and for how long."""
    from playwright.sync_api import expect

    page = visit(browser, site)
    open_tab(page, "Export")
    expect(
        page.get_by_text(re.compile(r"anyone holding a link can download its file until it expires"))
    ).to_be_visible()
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "**Download links.**" in readme and "whoever holds the link" in readme
    assert not [t for t in toasts(page) if t["type"] == "error"]


def test_a_refused_edit_is_said_once(browser: Any, site: Any) -> None:
    """Finding 7's doubled toasts: Enter then leaving the field refuses one edit once, its reason on the panel."""
    from playwright.sync_api import expect

    page = visit(browser, site)
    open_tab(page, "Config")
    epochs = form_field(page, "num_epochs")
    epochs.fill("50")
    epochs.press("Enter")
    expect(page.locator("code").filter(has_text="num_epochs: 50 is over this server's limit")).to_be_visible()
    epochs.press("Tab")
    page.wait_for_timeout(3000)
    said = [t["text"] for t in toasts(page) if t["type"] == "warning"]
    assert len(said) == 1 and "(2)" not in said[0], said

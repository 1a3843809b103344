"""A stranger's first training on the public studio (issue 24), in a real browser: a second Start is refused in a
full-width line that goes when the run ends, the evaluation chart shows three metrics with the rest one click away
(on a phone too), and the ONNX copy downloads. One public studio and one real training of the bundled model serve
the module."""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from tests.e2e.test_browser import block, open_tab, shot, toasts
from tests.e2e.test_first_visit import LOAD_MS, site, visit  # noqa: F401 (site: the module's public studio)
from tests.e2e.test_public_browser import tiny_yaml

pytestmark = pytest.mark.e2e

TRAIN_MS = 300_000
EVAL_PLOT_JS = """() => {
  for (const el of document.querySelectorAll('.js-plotly-plot')) {
    const t = (el.layout && el.layout.title) || {};
    if (!String(t.text || t).startsWith('Evaluation')) continue;
    const data = el.data || [];
    return {
      legend: data.filter(d => d.showlegend !== false).map(d => d.name),
      drawn: [...new Set(data.filter(d => d.visible === undefined || d.visible === true).map(d => d.legendgroup || d.name))],
      height: el._fullLayout._size.h,
      width: el._fullLayout._size.w,
    };
  }
  return null;
}"""


@pytest.fixture(scope="module")
def run(browser: Any, site: Any) -> Iterator[SimpleNamespace]:  # noqa: F811 (the imported fixture)
    """A visitor's page with a tiny training started, a second Start tried while it runs, and the run finished."""
    from playwright.sync_api import expect

    page = visit(browser, site)
    open_tab(page, "Config")
    editor = block(page, "config.yaml").locator(".cm-content")
    editor.click()
    page.keyboard.press("ControlOrMeta+a")
    page.keyboard.press("Delete")
    page.keyboard.insert_text(tiny_yaml())
    page.get_by_role("button", name="Apply YAML").click()
    expect(block(page, "config.yaml")).to_contain_text("max_seq_length: 32")
    open_tab(page, "Train")
    page.get_by_role("button", name="Start training").click()
    started = page.get_by_text(re.compile(r"^Started \S+\.$"))
    expect(started).to_be_visible(timeout=30_000)
    run_id = re.fullmatch(r"Started (\S+)\.", started.inner_text().strip()).group(1)
    page.get_by_role("button", name="Start training").click()  # while it runs: refused
    refusal = page.get_by_text(re.compile(rf"Not started: Your training {re.escape(run_id)} is still"))
    expect(refusal).to_be_visible(timeout=30_000)
    box = refusal.bounding_box()
    whole = page.evaluate("el => el.scrollWidth <= el.clientWidth + 1", refusal.element_handle())
    warned = [t["text"] for t in toasts(page) if t["type"] == "warning"]
    expect(page.get_by_text(re.compile(rf"{re.escape(run_id)}: finished"))).to_be_visible(timeout=TRAIN_MS)
    yield SimpleNamespace(page=page, run_id=run_id, refusal=refusal, box=box, whole=whole, warned=warned)
    page.context.close()


def test_a_second_start_is_refused_in_full_and_the_refusal_goes_with_the_run(run: Any, screenshots: Path) -> None:
    """Finding 6 (and 7's doubled toasts): a full-width refusal, said once, gone once the run it names has ended."""
    from playwright.sync_api import expect

    assert run.box["width"] > 0.6 * 1280 - 100, run.box  # the row's full width, not a narrow box beside the buttons
    assert run.whole, "the refusal is cut off"
    assert not run.warned, f"a toast repeats the refusal on the page: {run.warned}"
    expect(run.refusal).to_be_hidden(timeout=10_000)  # the run ended: the refusal naming it is stale
    shot(run.page, screenshots, "first_visit_train_finished")


def test_the_eval_chart_shows_three_metrics_and_the_rest_one_click_away(run: Any, screenshots: Path) -> None:
    """Finding 7: primary + two metrics drawn, one legend entry per metric, the others a legend click away; readable
    at phone width."""
    page = run.page
    chart = page.evaluate(EVAL_PLOT_JS)
    assert chart, "no evaluation chart"
    assert chart["drawn"][0] == "ndcg@10" and len([d for d in chart["drawn"] if "@" in d]) == 3, chart
    assert len(chart["legend"]) <= 8, chart["legend"]  # seven metrics (+ the best checkpoint), not 21 entries
    hidden = next(n for n in chart["legend"] if n not in chart["drawn"] and "@" in n)
    page.locator(".js-plotly-plot .legend .traces").filter(has_text=hidden).first.click()
    page.wait_for_function(f"() => ({EVAL_PLOT_JS})().drawn.includes({hidden!r})")

    phone = page.context.new_page()  # the same visitor on a phone-sized window: the run is re-attached
    phone.set_viewport_size({"width": 390, "height": 844})
    phone.goto(page.url)
    phone.get_by_text("Public mode").wait_for(timeout=LOAD_MS)
    open_tab(phone, "Train")
    phone.wait_for_function(f"() => {{ const c = ({EVAL_PLOT_JS})(); return c && c.legend.length > 0; }}")
    small = phone.evaluate(EVAL_PLOT_JS)
    shot(phone, screenshots, "first_visit_phone_eval_chart")
    assert small["height"] >= 150 and small["width"] >= 200, small  # a plot, not a strip under its legend


def test_the_onnx_copy_can_be_downloaded(run: Any, site: Any) -> None:  # noqa: F811
    """Finding 4: Export ONNX gives a zip to download, with no server path in what it says."""
    from playwright.sync_api import expect

    page = run.page
    open_tab(page, "Export")
    expect(page.get_by_label("Fine-tuned model folder")).to_have_value(
        re.compile(rf"runs/{re.escape(run.run_id)}/model")
    )
    page.get_by_text("ONNX copy for CPU serving").click()
    page.get_by_label("also int8 (quantised)").uncheck()
    page.get_by_role("button", name="Export ONNX").click()
    link = block(page, "Download the ONNX copy").locator("a[href]").first
    expect(link).to_be_visible(timeout=180_000)
    data = page.request.get(link.get_attribute("href")).body()
    names = zipfile.ZipFile(io.BytesIO(data)).namelist()
    assert any(n.endswith("/model.onnx") for n in names), names
    status = page.get_by_text(re.compile(r"unzip it to get")).inner_text()
    assert str(site.tmp) not in status and "visitors/" not in status and "python -m core" not in status, status

"""Public mode in a real browser: two visitors (two browser contexts, i.e. two strangers) on one public studio.
Each sees only its own run, and a reload keeps a visitor's run (their id lives in the browser's storage)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from studio.app import initial_config
from tests.e2e.conftest import WATCH_SCRIPT, _free_port
from tests.e2e.test_browser import block, open_tab, shot, tab

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def public_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    from studio.app import create_app, launch_kwargs

    tmp = tmp_path_factory.mktemp("public-e2e")
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
    yield f"http://127.0.0.1:{port}/"
    from core.runs.queue import live_runs, stop_training

    if live_runs():
        stop_training(wait_s=30)
    demo.close()


def tiny_yaml() -> str:
    """A short run with outputs inside the visitor's own folder (relative paths are theirs in public mode)."""
    cfg = initial_config(public=True)
    cfg.update(
        max_seq_length=32,
        batch_size=8,
        num_epochs=3,
        sample_size=60,
        test_size=0.2,
        runs_dir="runs",
        output_dir="outputs/model",
        cache_dir="cache",
    )
    cfg["mining"] = {**cfg.get("mining", {}), "num_negatives": 0}
    return yaml.safe_dump(cfg, sort_keys=False)


def visitor(browser: Any) -> Any:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.add_init_script(WATCH_SCRIPT)
    return context.new_page()


def test_two_visitors_see_only_their_own_run(browser: Any, public_url: str, screenshots: Path) -> None:
    from playwright.sync_api import expect

    a, b = visitor(browser), visitor(browser)
    a.goto(public_url)
    expect(a.get_by_text("Public mode")).to_be_visible(timeout=60_000)
    open_tab(a, "Config")
    editor = block(a, "config.yaml").locator(".cm-content")
    editor.click()
    a.keyboard.press("ControlOrMeta+a")
    a.keyboard.press("Delete")
    a.keyboard.insert_text(tiny_yaml())
    a.get_by_role("button", name="Apply YAML").click()
    expect(block(a, "config.yaml")).to_contain_text("max_seq_length: 32", timeout=15_000)
    open_tab(a, "Train")
    a.get_by_role("button", name="Start training").click()
    started = a.get_by_text(re.compile(r"^Started \S+\.$"))
    expect(started).to_be_visible(timeout=30_000)
    run_id = re.fullmatch(r"Started (\S+)\.", started.inner_text().strip()).group(1)
    expect(a.get_by_text(re.compile(rf"{re.escape(run_id)}: "))).to_be_visible(timeout=30_000)

    b.goto(public_url)  # a stranger: another browser, another visitor
    expect(b.get_by_text("Public mode")).to_be_visible(timeout=60_000)
    open_tab(b, "Train")
    expect(b.get_by_text("No run yet")).to_be_visible(timeout=30_000)
    b.wait_for_timeout(3000)  # the page's load event has run: still nothing of A's
    assert run_id not in b.content()
    open_tab(b, "Export")
    b.get_by_role("button", name="↻ runs").click()
    b.wait_for_timeout(2000)
    assert run_id not in b.content()
    shot(b, screenshots, "public_visitor_b")

    a.reload()  # the same browser is the same visitor: the run is re-attached
    expect(tab(a, "Train")).to_be_visible(timeout=60_000)
    open_tab(a, "Train")
    expect(a.get_by_text(re.compile(rf"{re.escape(run_id)}: (running|finished|queued)"))).to_be_visible(timeout=60_000)
    shot(a, screenshots, "public_visitor_a_after_reload")
    a.get_by_role("button", name="Stop").click()
    expect(a.get_by_text(re.compile(rf"{re.escape(run_id)}: (stopped|finished)"))).to_be_visible(timeout=240_000)
    b.reload()
    expect(tab(b, "Train")).to_be_visible(timeout=60_000)
    b.wait_for_timeout(3000)
    assert run_id not in b.content()

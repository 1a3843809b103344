"""Browser fixtures: Debian's Chromium (installed with apt-get when missing), the studio launched in-process on a
free port with a temporary workspace and runs folder, and a Playwright page that records toasts and JS errors."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

os.environ["HF_HUB_OFFLINE"] = "1"  # the studio and its training subprocess never reach a hub
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "test-artifacts" / "screenshots"  # git-ignored; kept after the run for a person to look at
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--no-first-run",
]
APT_TIMEOUT_S = 900

# Runs in the page before Gradio's own scripts: keeps every toast (they fade out) and every uncaught error, so the
# test can assert on them after the fact.
WATCH_SCRIPT = """
window.__toasts = [];
window.__errors = [];
window.addEventListener('error', e => window.__errors.push(String(e.message || e)));
window.addEventListener('unhandledrejection', e => window.__errors.push('unhandled rejection: ' + String(e.reason)));
new MutationObserver(() => {
  for (const el of document.querySelectorAll('.toast-body:not([data-e2e-seen])')) {
    el.setAttribute('data-e2e-seen', '1');
    const type = ['error', 'warning', 'info', 'success'].find(t => el.classList.contains(t)) || 'unknown';
    window.__toasts.push({type, text: el.innerText.replace(/\\s+/g, ' ').trim()});
  }
}).observe(document, {childList: true, subtree: true});
"""


def _tail(text: str, n: int = 15) -> str:
    return "\n".join((text or "").strip().splitlines()[-n:])


def ensure_chromium() -> Path:
    """/usr/bin/chromium, installed from Debian's repositories when missing; skips the test when that fails."""
    if CHROMIUM.exists():
        return CHROMIUM
    if shutil.which("apt-get") is None:
        pytest.skip(f"{CHROMIUM} is missing and there is no apt-get to install it")
    if hasattr(os, "geteuid") and os.geteuid() != 0:
        pytest.skip(f"{CHROMIUM} is missing and installing it needs root: run `apt-get install -y chromium`")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    lock = ["-o", "DPkg::Lock::Timeout=300"]  # another apt-get (e.g. a provisioning step) may hold the lock
    for cmd in (
        ["apt-get", *lock, "update"],
        ["apt-get", *lock, "install", "-y", "--no-install-recommends", "chromium"],
    ):
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=APT_TIMEOUT_S)
        except (OSError, subprocess.TimeoutExpired) as exc:
            pytest.skip(f"`{' '.join(cmd)}` failed: {exc}")
        if proc.returncode != 0:
            pytest.skip(f"`{' '.join(cmd)}` failed ({proc.returncode}):\n{_tail(proc.stdout + proc.stderr)}")
    if not CHROMIUM.exists():
        pytest.skip(f"apt-get installed chromium but {CHROMIUM} is still missing")
    return CHROMIUM


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Studio:
    url: str
    tmp: Path
    workspace: Path
    runs_dir: Path
    demo: Any = field(repr=False)


@pytest.fixture(scope="module")
def studio(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Studio]:
    """The studio served on 127.0.0.1:<free port>; workspace and runs in a temp folder. Stops a training left
    running and closes the server afterwards."""
    import studio.app as studio_app

    tmp = tmp_path_factory.mktemp("e2e")
    workspace, runs_dir = tmp / "workspace", tmp / "runs"
    demo = studio_app.create_app(workspace=workspace, runs_dir=runs_dir)
    demo.queue(default_concurrency_limit=1)  # as app.py serves it
    extra = studio_app.launch_kwargs() if hasattr(studio_app, "launch_kwargs") else {}
    port = _free_port()
    demo.launch(prevent_thread_lock=True, server_name="127.0.0.1", server_port=port, share=False, quiet=True, **extra)
    try:
        yield Studio(url=f"http://127.0.0.1:{port}/", tmp=tmp, workspace=workspace, runs_dir=runs_dir, demo=demo)
    finally:
        from core.runs.queue import live_runs, stop_training

        if live_runs():  # never leave a training process behind
            stop_training(wait_s=30)
        demo.close()


_LAUNCHED: list[Any] = []  # the session's browser, once a test has asked for it


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    sync_api = pytest.importorskip("playwright.sync_api")
    executable = ensure_chromium()
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(executable), args=CHROMIUM_ARGS)
        _LAUNCHED.append(browser)
        try:
            yield browser
        finally:
            _LAUNCHED.clear()
            browser.close()


@pytest.fixture(scope="module", autouse=True)
def _close_the_modules_pages() -> Iterator[None]:
    """Every page a module's tests opened (a visitor each) closes with the module. Left open, each one's renderer
    kept polling a studio that had shut down: 15 of them took a core from the rest of the suite on a 2-core CI."""
    yield
    for browser in _LAUNCHED:
        for context in list(browser.contexts):
            context.close()


@pytest.fixture(scope="session")
def screenshots() -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator:
    report = yield
    setattr(item, f"rep_{report.when}", report)  # the page fixture screenshots a failed test
    return report


@pytest.fixture
def page(browser: Any, screenshots: Path, request: pytest.FixtureRequest) -> Iterator[Any]:
    """A fresh page (1400x1000) with toasts and JS errors recorded in window.__toasts / window.__errors; console
    errors are kept on `page.console_errors`. On failure a full-page screenshot is saved as FAILED-<test>.png."""
    failed_shot = screenshots / f"FAILED-{request.node.name}.png"
    failed_shot.unlink(missing_ok=True)  # a stale one from an earlier failure would mislead
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    context.add_init_script(WATCH_SCRIPT)
    context.set_default_timeout(30_000)
    page = context.new_page()
    page.console_errors = []
    page.on("console", lambda m: page.console_errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda exc: page.console_errors.append(f"pageerror: {exc}"))
    try:
        yield page
    finally:
        rep = getattr(request.node, "rep_call", None)
        if rep is not None and rep.failed:
            try:
                page.screenshot(path=str(failed_shot), full_page=True)
            except Exception as exc:  # the page may be gone; the failure itself is what matters
                print(f"could not save the failure screenshot: {exc}")
        context.close()

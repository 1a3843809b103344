"""A simulated Hugging Face Space in Chromium: the header (public mode, hardware, limits, no persistent storage),
"Duplicate this Space", and "Sign in with Hugging Face" through Gradio's local OAuth stand-in (the user named by
STUDIO_OAUTH_MOCK_USER; nothing reaches the internet): signing in keeps the work done anonymously, signing out
gives the anonymous visitor back."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import ROOT, WATCH_SCRIPT, _free_port
from tests.e2e.test_browser import shot

pytestmark = pytest.mark.e2e
USER = "alice-q7x"
SPACE = "someone/embedding-studio"
SAMPLE = ROOT / "assets" / "samples" / "it_helpdesk_pairs.jsonl"


def oauth_installed() -> bool:
    return all(importlib.util.find_spec(m) is not None for m in ("authlib", "itsdangerous"))


@pytest.fixture(scope="module")
def space_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`python app.py` with a Space's variables, off Hugging Face's machines (no SYSTEM=spaces): Gradio then serves
    its local OAuth stand-in, here signing in as USER."""
    tmp = tmp_path_factory.mktemp("space-e2e")
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STUDIO_", "SPACE_", "OAUTH_", "SYSTEM"))}
    env.update(
        SPACE_ID=SPACE,
        SPACE_HOST="someone-embedding-studio.hf.space",
        STUDIO_OAUTH_MOCK_USER=USER,
        GRADIO_SERVER_PORT=str(port),
        GRADIO_ANALYTICS_ENABLED="False",
        HF_HUB_OFFLINE="1",
    )
    log_path = tmp / "server.log"
    with log_path.open("w") as log:
        server = subprocess.Popen([sys.executable, str(ROOT / "app.py")], cwd=tmp, env=env, stdout=log, stderr=log)
    try:
        deadline = time.time() + 180
        while "Studio on http" not in log_path.read_text() and time.time() < deadline:
            assert server.poll() is None, log_path.read_text()[-3000:]
            time.sleep(1)
        yield f"http://127.0.0.1:{port}/"
    finally:
        server.terminate()
        server.wait(timeout=30)


def new_page(browser: Any) -> Any:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.add_init_script(WATCH_SCRIPT)
    # The Hub is out of reach here: its pages are answered by a stub, so a click that opens one is seen, not sent.
    context.route(re.compile(r"https://huggingface\.co/.*"), lambda route: route.fulfill(body="hub page stand-in"))
    return context.new_page()


def test_header_and_duplicate_this_space(browser: Any, space_url: str, screenshots: Path) -> None:
    from playwright.sync_api import expect

    page = new_page(browser)
    page.goto(space_url)
    header = page.locator("#studio-header")
    expect(header).to_contain_text("Public mode", timeout=60_000)
    expect(header).to_contain_text(re.compile(r"Limits on this Space \((CPU: .+, \d+ cores|GPU: .+ GB)\)"))
    expect(header).to_contain_text("lost when this Space restarts")
    expect(page.get_by_text("to train privately on hardware you choose")).to_be_visible()
    # off Hugging Face's machines Gradio's button is a plain link to the Hub's duplicate page (there, a click handler)
    duplicate = page.get_by_role("link", name="Duplicate this Space")
    expect(duplicate).to_be_visible()
    shot(page, screenshots, "space_header")
    with page.context.expect_page() as opened:
        duplicate.click()
    assert opened.value.url == f"https://huggingface.co/spaces/{SPACE}?duplicate=true"
    page.context.close()


def test_sign_in_keeps_the_anonymous_work_and_sign_out_returns_to_it(
    browser: Any, space_url: str, screenshots: Path, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    if not oauth_installed():
        pytest.skip("the gradio[oauth] extra (authlib, itsdangerous) is not installed: the studio offers no sign-in")
    page = new_page(browser)
    page.goto(space_url)
    expect(page.locator("#studio-who")).to_contain_text("Anonymous", timeout=60_000)
    mine = tmp_path / "my_pairs.jsonl"
    mine.write_bytes(SAMPLE.read_bytes())
    page.locator("input[type=file]").first.set_input_files(str(mine))  # the Data tab's upload
    expect(page.get_by_text(re.compile(r"my_pairs\.jsonl\s*selected"))).to_be_visible(timeout=60_000)

    page.get_by_role("button", name="Sign in with Hugging Face").click()
    who = page.locator("#studio-who")
    expect(who).to_contain_text(f"Signed in as {USER}", timeout=60_000)
    expect(who).to_contain_text("is now in your account")  # the upload moved with the visitor
    expect(page.get_by_role("button", name=f"Logout ({USER})")).to_be_visible()
    shot(page, screenshots, "space_signed_in")

    other = new_page(browser)  # another browser of the same user: the same account, signed in there too
    other.goto(space_url)
    other.get_by_role("button", name="Sign in with Hugging Face").click()
    expect(other.locator("#studio-who")).to_contain_text(f"Signed in as {USER}", timeout=60_000)
    expect(other.locator("#studio-who")).not_to_contain_text("is now in your account")  # nothing to move twice
    other.context.close()

    page.get_by_role("button", name=f"Logout ({USER})").click()
    expect(page.locator("#studio-who")).to_contain_text("Anonymous", timeout=60_000)
    expect(page.get_by_role("button", name="Sign in with Hugging Face")).to_be_visible()
    page.context.close()

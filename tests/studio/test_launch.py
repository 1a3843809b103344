"""`python app.py` started from another directory, with a foreign `core` on PYTHONPATH: the server prints its
address and no share-link hint, writes workspace/ and runs/ where it was started, and its training child runs the
project's own code to the end."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from gradio_client import Client, handle_file

from tests.conftest import ROOT
from tests.studio.test_api import SAMPLE, tiny


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_app_from_another_directory_trains(tmp_path: Path) -> None:
    shadow = tmp_path / "shadow" / "core"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("raise ImportError('a foreign core package was imported')\n")
    cwd = tmp_path / "elsewhere"
    cwd.mkdir()
    data = cwd / "pairs.jsonl"
    data.write_text("".join(SAMPLE.read_text(encoding="utf-8").splitlines(keepends=True)[:32]), encoding="utf-8")
    port = _free_port()
    env = {
        **os.environ,
        "PYTHONPATH": str(shadow.parent),
        "GRADIO_SERVER_PORT": str(port),
        "GRADIO_ANALYTICS_ENABLED": "False",
        "HF_HUB_OFFLINE": "1",
    }
    log = (tmp_path / "server.log").open("w")
    server = subprocess.Popen(
        [sys.executable, str(ROOT / "app.py")], cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT
    )
    try:
        deadline = time.time() + 180
        while "Studio on http" not in (tmp_path / "server.log").read_text() and time.time() < deadline:
            assert server.poll() is None, (tmp_path / "server.log").read_text()[-3000:]
            time.sleep(1)
        client = Client(f"http://127.0.0.1:{port}/", verbose=False)
        assert client.predict(handle_file(str(data)), api_name="/validate_dataset")["selected"]
        started = client.predict(tiny(tmp_path), api_name="/start_training")
        assert "error" not in started, started
        deadline = time.time() + 300
        while (status := client.predict(api_name="/training_status"))["state"] == "running" and time.time() < deadline:
            time.sleep(1)
        assert status["state"] == "finished", (status, Path(started["run_dir"], "process.log").read_text()[-2000:])
        assert Path(started["run_dir"]).is_relative_to(cwd / "runs") and (cwd / "workspace").is_dir()
        client.close()
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()
    out = (tmp_path / "server.log").read_text()
    assert f"127.0.0.1:{port}" in out and "share=True" not in out and "public link" not in out

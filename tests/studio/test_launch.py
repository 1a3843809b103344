"""`python app.py` started from another directory, with a foreign `core` on PYTHONPATH: the server prints its
address and no share-link hint, writes workspace/ and runs/ where it was started, and its training child runs the
project's own code to the end."""

from __future__ import annotations

import importlib.util
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil
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


def _oauth_installed() -> bool:
    return all(importlib.util.find_spec(m) is not None for m in ("authlib", "itsdangerous"))


def space_env(port: int, **extra: str) -> dict[str, str]:
    """The environment a Hugging Face Space gives `python app.py` (a README with `hf_oauth: true` adds the OAUTH_*
    variables); the OpenID provider is a closed local port: nothing here may reach the internet."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STUDIO_", "OAUTH_", "SPACE_"))}
    return {
        **env,
        "SYSTEM": "spaces",
        "SPACE_ID": "someone/embedding-studio",
        "SPACE_HOST": "someone-embedding-studio.hf.space",
        "GRADIO_SERVER_NAME": "0.0.0.0",
        "GRADIO_SERVER_PORT": str(port),
        "OAUTH_CLIENT_ID": "space-client-id",
        "OAUTH_CLIENT_SECRET": "space-client-secret",
        "OAUTH_SCOPES": "openid profile write-repos manage-repos",
        "OPENID_PROVIDER_URL": f"http://127.0.0.1:{closed}",
        "GRADIO_ANALYTICS_ENABLED": "False",
        "HF_HUB_OFFLINE": "1",
        **extra,
    }


def wait_for_server(log_path: Path, server: subprocess.Popen, timeout: float = 180) -> None:
    deadline = time.time() + timeout
    while "Studio on http" not in log_path.read_text() and time.time() < deadline:
        assert server.poll() is None, log_path.read_text()[-3000:]
        time.sleep(1)


@pytest.mark.slow
def test_the_space_start_path(tmp_path: Path) -> None:
    """`python app.py` as a Space starts it: from another folder, on 0.0.0.0 and the given port, in public mode,
    with the sign-in and duplicate buttons, a header that names the hardware and says runs are lost on restart
    (no persistent storage), and a training on the sample that finishes."""
    cwd = tmp_path / "home" / "user" / "app"
    cwd.mkdir(parents=True)
    port = _free_port()
    log_path = tmp_path / "server.log"
    with log_path.open("w") as log:
        server = subprocess.Popen(
            [sys.executable, str(ROOT / "app.py")], cwd=cwd, env=space_env(port), stdout=log, stderr=subprocess.STDOUT
        )
    try:
        wait_for_server(log_path, server)
        listening = psutil.Process(server.pid).net_connections(kind="inet")
        assert ("0.0.0.0", port) in {(c.laddr.ip, c.laddr.port) for c in listening if c.status == psutil.CONN_LISTEN}
        url = f"http://127.0.0.1:{port}/"
        config = httpx.get(url + "config", timeout=30).json()
        buttons = {c["props"].get("value") for c in config["components"] if c.get("type") == "button"}
        texts = " ".join(str(c.get("props", {}).get("value", "")) for c in config["components"])
        assert "**Public mode**" in texts and "Limits on this Space (CPU: " in texts and "cores)" in texts
        assert "lost when this Space restarts" in texts and "Duplicate this Space" in texts
        assert "Duplicate this Space" in buttons
        if _oauth_installed():
            assert "Sign in with Hugging Face" in buttons and "Sign-in is off" not in texts
            # the login route is Gradio's real one: it goes to the provider named by the Space, never elsewhere
            login = httpx.get(url + "login/huggingface", timeout=30)
            assert login.status_code >= 500 or "127.0.0.1" in login.headers.get("location", "")
        else:
            assert "Sign in with Hugging Face" not in buttons and "Sign-in is off: the `gradio[oauth]` extra" in texts
        client = Client(url, verbose=False)
        started = client.predict(
            {"max_seq_length": 32, "batch_size": 8, "sample_size": 40, "num_epochs": 1, "mining.num_negatives": 0},
            api_name="/start_training",
        )
        assert started.get("state") == "running", started
        deadline = time.time() + 300
        while (status := client.predict(api_name="/training_status"))["state"] == "running" and time.time() < deadline:
            time.sleep(1)
        assert status["state"] == "finished", (status, Path(started["run_dir"], "process.log").read_text()[-2000:])
        assert Path(started["run_dir"]).is_relative_to(cwd / "workspace" / "visitors")
        client.close()
    finally:
        server.terminate()
        server.wait(timeout=30)
    out = log_path.read_text()
    assert f":{port}/ (public mode" in out and "share=True" not in out and "public link" not in out
    assert "space-client-secret" not in out

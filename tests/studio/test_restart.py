"""A studio killed and restarted while its training child runs: the new server shows that run and does not start a
second training beside it (the lock file in the runs folder records the child's pid and start time)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from gradio_client import Client

from core.runs.folders import pid_alive
from tests.studio.conftest import _free_port

ROOT = Path(__file__).resolve().parents[2]


def serve(tmp: Path, port: int) -> subprocess.Popen:
    env = {
        **os.environ,
        "STUDIO_WORKSPACE": str(tmp / "workspace"),
        "STUDIO_RUNS_DIR": str(tmp / "runs"),
        "GRADIO_SERVER_PORT": str(port),
        "HF_HUB_OFFLINE": "1",
        "GRADIO_ANALYTICS_ENABLED": "False",
    }
    env.pop("STUDIO_PUBLIC", None)
    return subprocess.Popen(
        [sys.executable, str(ROOT / "app.py")], cwd=tmp, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT
    )


def connect(port: int, timeout: float = 120) -> Client:
    deadline = time.time() + timeout
    while True:
        try:
            return Client(f"http://127.0.0.1:{port}/", verbose=False)
        except Exception:
            if time.time() > deadline:
                raise
            time.sleep(1)


@pytest.mark.slow
def test_restarted_server_reattaches_and_refuses_a_concurrent_training(tmp_path: Path) -> None:
    port = _free_port()
    server = serve(tmp_path, port)
    child_pid = None
    try:
        client = connect(port)
        overrides = {
            "max_seq_length": 32,
            "batch_size": 8,
            "num_epochs": 20,
            "mining.num_negatives": 0,
            "output_dir": str(tmp_path / "model"),
            "cache_dir": str(tmp_path / "cache"),
        }
        first = client.predict(overrides, api_name="/start_training")
        assert first["state"] == "running", first
        locks = list((tmp_path / "runs" / ".locks").glob("*.lock"))
        assert len(locks) == 1
        import json

        child_pid = json.loads(locks[0].read_text())["pid"]
        client.close()
        server.send_signal(signal.SIGKILL)  # no clean-up: the child outlives its server
        server.wait(timeout=30)
        assert pid_alive(child_pid)  # the child outlived its server

        server = serve(tmp_path, port)
        client = connect(port)
        shown = client.predict(api_name="/training_status")
        assert shown["run_dir"] == first["run_dir"] and shown["state"] == "running", shown
        second = client.predict({**overrides, "output_dir": str(tmp_path / "model2")}, api_name="/start_training")
        assert second["state"] == "queued", second  # not started beside the adopted child
        assert len(list((tmp_path / "runs" / ".locks").glob("*.lock"))) == 1
        assert client.predict(api_name="/stop_training")["stopped"] == second["run_id"]  # cancel the waiting one
        stopped = client.predict(api_name="/stop_training")
        assert stopped["run_dir"] == first["run_dir"]
        deadline = time.time() + 180
        while time.time() < deadline and pid_alive(child_pid):
            time.sleep(1)
        if pid_alive(child_pid):
            pytest.fail("the adopted child did not stop")
        client.close()
    finally:
        server.kill()
        if child_pid:
            try:
                os.kill(child_pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

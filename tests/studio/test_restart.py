"""A studio killed and restarted while its training child runs: the new server shows that run and does not start a
second training beside it (the lock file in the runs folder records the child's pid and start time)."""

from __future__ import annotations

import json
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


def serve_space(tmp: Path, port: int) -> subprocess.Popen:
    """A public studio whose persistent storage is `tmp/data` (as a Space's /data), started from `tmp/app`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STUDIO_", "SPACE_"))}
    env.update(
        STUDIO_PUBLIC="1",
        STUDIO_DATA_DIR=str(tmp / "data"),
        STUDIO_MAX_EPOCHS="60",  # the long training below must still be running when the server is killed
        GRADIO_SERVER_PORT=str(port),
        HF_HUB_OFFLINE="1",
        GRADIO_ANALYTICS_ENABLED="False",
    )
    (tmp / "app").mkdir(exist_ok=True)
    return subprocess.Popen(
        [sys.executable, str(ROOT / "app.py")],
        cwd=tmp / "app",
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )


def browser(url: str, session: str, stored: str | None) -> tuple[Client, str]:
    """A page load (its visitor id from the browser's store, or a new one), then a client on that page's session."""
    from tests.studio.test_public import page_event

    loaded = page_event(url, session, "page_visitor", [stored])
    assert loaded["success"], loaded
    client = Client(url, verbose=False)
    client.session_hash = session
    return client, loaded["output"]["data"][0]


@pytest.mark.slow
def test_persistent_storage_keeps_runs_models_and_the_queue_across_a_restart(tmp_path: Path) -> None:
    port = _free_port()
    url = f"http://127.0.0.1:{port}/"
    server = serve_space(tmp_path, port)
    small = {"max_seq_length": 32, "batch_size": 8, "sample_size": 40, "num_epochs": 1, "mining.num_negatives": 0}
    child_pid = None
    try:
        connect(port).close()
        first, first_id = browser(url, "browser-1", None)
        done = first.predict(small, api_name="/start_training")
        assert done["state"] == "running", done
        deadline = time.time() + 300
        while (status := first.predict(api_name="/training_status"))["state"] == "running" and time.time() < deadline:
            time.sleep(1)
        assert status["state"] == "finished", status
        second, second_id = browser(url, "browser-2", None)
        running = second.predict({**small, "num_epochs": 60, "sample_size": None}, api_name="/start_training")
        assert running["state"] == "running", running
        third, third_id = browser(url, "browser-3", None)
        queued = third.predict(small, api_name="/start_training")
        assert queued["state"] == "queued", queued
        lock = next((tmp_path / "data" / "runs" / ".locks").glob("*.lock"))
        child_pid = json.loads(lock.read_text())["pid"]
        for c in (first, second, third):
            c.close()
        server.send_signal(signal.SIGKILL)
        server.wait(timeout=30)

        server = serve_space(tmp_path, port)
        connect(port).close()
        again, same_id = browser(url, "browser-1-next-day", first_id)  # the same browser store, a new page
        assert same_id == first_id
        seen = again.predict(api_name="/training_status")
        assert seen["run_id"] == done["run_id"] and seen["state"] == "finished", seen
        assert Path(seen["model_dir"]).is_dir() and Path(seen["model_dir"]).is_relative_to(tmp_path / "data")
        waiting, _ = browser(url, "browser-3-next-day", third_id)
        assert waiting.predict(api_name="/training_status")["state"] == "queued"  # the queue survived
        holder, _ = browser(url, "browser-2-next-day", second_id)
        assert holder.predict(api_name="/training_status")["state"] == "running"  # the child was adopted
        assert waiting.predict(api_name="/stop_training")["stopped"] == queued["run_id"]
        assert holder.predict(api_name="/stop_training")["run_dir"] == running["run_dir"]
        deadline = time.time() + 180
        while time.time() < deadline and pid_alive(child_pid):
            time.sleep(1)
        for c in (again, waiting, holder):
            c.close()
        # everything lives in the persistent folder, nothing where the server was started
        assert not (tmp_path / "app" / "workspace").exists() and not (tmp_path / "app" / "runs").exists()
        assert (tmp_path / "data" / "workspace" / "visitors" / ".secret").is_file()
    finally:
        server.kill()
        if child_pid:
            try:
                os.kill(child_pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

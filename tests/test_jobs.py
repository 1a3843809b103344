"""The training child started by core.runs.queue (core/runs/process.py): it runs this project's code from any working
directory, and a child that dies before it can write its own `failed` event is reported with its real error line and
the log that exists."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from core.config.schema import load_config
from core.runs import queue as jobs
from core.runs.events import read_events
from core.runs.process import PROCESS_LOG, first_error, mark_ended
from core.runs.queue import run_status, start_training
from tests.conftest import ROOT, tiny_overrides, write_jsonl


def _wait(run_dir: Path, timeout: float = 300) -> dict:
    deadline = time.time() + timeout
    while time.time() < deadline:
        status = run_status(run_dir)
        if status["state"] not in ("running", "queued", "interrupted") or (
            status["state"] == "interrupted" and run_dir not in jobs.live_runs()
        ):
            return status
        time.sleep(1)
    jobs.stop_training(run_dir, wait_s=30)
    return run_status(run_dir)


@pytest.mark.slow
@pytest.mark.usefixtures("own_queue")
def test_child_runs_the_project_from_another_directory(tmp_path, monkeypatch, sample_pairs):
    # A foreign `core` first on the caller's PYTHONPATH and a working directory without the project: the child
    # must still import the server's own `core`.
    shadow = tmp_path / "shadow" / "core"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("raise ImportError('a foreign core package was imported')\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.setenv("PYTHONPATH", str(shadow.parent))
    monkeypatch.chdir(elsewhere)
    data = write_jsonl(tmp_path / "pairs.jsonl", sample_pairs[:24])
    cfg = load_config(ROOT / "assets" / "configs" / "default.yaml", tiny_overrides(tmp_path, data, num_epochs=1))
    run_dir, _ = start_training(cfg)
    status = _wait(run_dir)
    log = (run_dir / PROCESS_LOG).read_text(errors="replace")
    assert status["state"] == "finished", (status, log[-2000:])
    assert Path(status["model_dir"], "modules.json").exists()


def test_a_start_after_the_lock_folder_was_deleted(tmp_path, own_queue):
    # Someone removes the runs folder (and the queue's locks in it) under a running server: the next Start still
    # starts, its child is tracked and its lock written again, and its failure (the data went too) is reported.
    shutil.rmtree(own_queue.locks_dir)
    cfg = load_config(None, tiny_overrides(tmp_path, tmp_path / "gone.jsonl"))
    run_dir, started = start_training(cfg)
    assert started["state"] == "running" and run_dir in jobs.live_runs()
    assert json.loads((own_queue.locks_dir / f"{run_dir.name}.lock").read_text())["run_dir"] == str(run_dir)
    status = _wait(run_dir, timeout=120)
    assert status["state"] == "failed" and "gone.jsonl" in status["message"], status


def test_dead_child_reports_its_error_and_the_log_that_exists(tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    with (run_dir / PROCESS_LOG).open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-c", "import no_such_module_here"], stdout=log, stderr=subprocess.STDOUT
        )
    proc.wait()
    mark_ended(run_dir, proc.returncode)
    failed = [e for e in read_events(run_dir / "events.jsonl")[0] if e["type"] == "failed"]
    assert len(failed) == 1
    message = failed[0]["message"]
    assert message.splitlines()[0] == "ModuleNotFoundError: No module named 'no_such_module_here'"
    assert str(run_dir / PROCESS_LOG) in message and "train.log" not in message


def test_first_error_skips_frames_and_warnings(tmp_path):
    log = tmp_path / "process.log"
    log.write_text(
        'UserWarning: something harmless\nTraceback (most recent call last):\n  File "x.py", line 1\n'
        "    raise ValueError('bad')\nValueError: bad value in field x\n"
    )
    assert first_error(log) == "ValueError: bad value in field x"
    assert first_error(tmp_path / "missing.log") is None

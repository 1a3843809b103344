"""Run summaries: an ended run is parsed once per version of its events; a new event is seen at once; a run is
running only while its own process lives."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import psutil

from core.runs.events import EventWriter
from core.runs.folders import EVENTS_FILE, PID_FILE, config_differences, list_runs, load_run, write_json


def test_ended_run_is_parsed_once_and_reread_when_its_events_change(tmp_path):
    run = tmp_path / "runs" / "r1"
    run.mkdir(parents=True)
    writer = EventWriter(run / EVENTS_FILE)
    writer.emit("run_started", kind="train")
    assert load_run(run).state == "interrupted"  # no process, no terminal event
    writer.emit("finished", model_dir="m")
    first = load_run(run)
    assert first.state == "finished" and first.model_dir == "m"
    assert load_run(run) is first and list_runs(tmp_path / "runs")[0] is first
    writer.emit("failed", message="resumed and failed")  # a resume appends to the same file
    again = load_run(run)
    assert again is not first and again.state == "failed" and again.message == "resumed and failed"


def test_a_run_is_running_only_while_its_own_process_lives(tmp_path):
    """The pid file's process, alive and started before the file was written; not a zombie, not a later process
    that got the same pid after a crash or reboot."""
    run = tmp_path / "r1"
    run.mkdir()
    EventWriter(run / EVENTS_FILE).emit("run_started", kind="train")
    write_json(run / PID_FILE, os.getpid())
    assert load_run(run).state == "running"
    started = psutil.Process().create_time()
    os.utime(run / PID_FILE, (started - 60, started - 60))  # the file predates this process: a reused pid
    assert load_run(run).state == "interrupted"
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    deadline = time.time() + 30
    while psutil.Process(child.pid).status() != psutil.STATUS_ZOMBIE and time.time() < deadline:
        time.sleep(0.05)  # exited but not reaped: a zombie
    write_json(run / PID_FILE, child.pid)
    assert load_run(run).state == "interrupted"
    child.wait()


def test_a_damaged_run_folder_does_not_hide_the_others(tmp_path):
    from core.runs.folders import list_runs, runs_frame

    for name, config, metrics in (
        ("good", "num_epochs: 1\n", '{"final": {}}'),
        ("bad_yaml", "a: [unclosed\n", "[1, 2]"),
        ("not_a_mapping", "- a list\n", "not json"),
        ("latin1", None, "{}"),
    ):
        run = tmp_path / name
        run.mkdir()
        (run / "events.jsonl").write_text('{"type": "finished"}\n', encoding="utf-8")
        if config is None:
            (run / "config.yaml").write_bytes(b"model_name: caf\xe9\n")
        else:
            (run / "config.yaml").write_text(config, encoding="utf-8")
        (run / "metrics.json").write_text(metrics, encoding="utf-8")
    assert {r.run_id for r in list_runs(tmp_path)} == {"good", "bad_yaml", "not_a_mapping", "latin1"}
    assert len(runs_frame(tmp_path)) == 4


def test_config_differences_lists_only_keys_that_differ(tmp_path):
    for name, lr, negatives in (("r1", 2e-5, 1), ("r2", 5e-5, 1), ("r3", 5e-5, 2)):
        (tmp_path / name).mkdir()
        (tmp_path / name / "config.yaml").write_text(
            f"learning_rate: {lr}\nbatch_size: 32\nmining:\n  num_negatives: {negatives}\n  margin: 0\n"
        )
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "config.yaml").write_text("learning_rate: [1\n")
    diff = config_differences([tmp_path / n for n in ("r1", "r2", "r3")])
    assert list(diff["key"]) == ["learning_rate", "mining.num_negatives"]
    assert list(diff.columns) == ["key", "r1", "r2", "r3"] and diff.iloc[0]["r1"] == "2e-05"
    assert config_differences([tmp_path / "r1", tmp_path / "r1"]).empty
    assert "batch_size" in set(config_differences([tmp_path / "r1", tmp_path / "broken"])["key"])

"""Run summaries: an ended run is parsed once per version of its events; a new event is seen at once."""

from __future__ import annotations

from core.events import EventWriter
from core.runs import EVENTS_FILE, list_runs, load_run


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

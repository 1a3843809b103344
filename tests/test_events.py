from __future__ import annotations

import json
import math

from core.runs.events import EventWriter, read_events
from core.runs.folders import list_runs, load_run, new_run_dir, request_stop, run_state, stop_requested


def test_write_and_follow_from_offset(tmp_path):
    path = tmp_path / "events.jsonl"
    w = EventWriter(path)
    w.emit("run_started", config={"a": 1})
    events, offset = read_events(path)
    assert [e["type"] for e in events] == ["run_started"] and "time" in events[0]
    w.emit("train_step", step=1, max_steps=2, loss=float("nan"))
    events, offset2 = read_events(path, offset)
    assert [e["type"] for e in events] == ["train_step"]
    assert events[0]["loss"] is None  # NaN would make the line unreadable to JSON parsers
    assert read_events(path, offset2) == ([], offset2)


def test_half_written_line_waits(tmp_path):
    path = tmp_path / "events.jsonl"
    path.write_text(json.dumps({"type": "eval", "time": 1}) + "\n" + '{"type": "tra')
    events, offset = read_events(path)
    assert len(events) == 1
    with path.open("a") as f:
        f.write('in_step", "time": 2}\n')
    events, _ = read_events(path, offset)
    assert events == [{"type": "train_step", "time": 2}]


def test_run_folders(tmp_path):
    a = new_run_dir(tmp_path, "my data!")
    b = new_run_dir(tmp_path, "my data!")
    assert a != b and a.name.endswith("my_data") and b.exists()
    EventWriter(a / "events.jsonl").emit("finished", model_dir="x", metrics={})
    EventWriter(b / "events.jsonl").emit("run_started")
    assert run_state(a)[0] == "finished"
    assert run_state(b)[0] == "interrupted"  # no terminal event, no live process
    request_stop(b)
    assert stop_requested(b)
    runs = list_runs(tmp_path)
    assert {r.run_id for r in runs} == {a.name, b.name}
    assert load_run(a).model_dir == "x"
    assert not math.isnan(runs[0].created)

"""The event stream: the only link between a training run and any UI.

One JSON object per line in `runs/<run_id>/events.jsonl`, each with `type` and `time` (unix seconds):
queued, run_started, estimate, phase, mining_progress, mining_done, precision, train_step, eval, checkpoint,
warning, finished, stopped, failed.
Writers append and flush per event; readers read complete lines from a byte offset, so a file that is
being written can be followed by any number of processes.
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
from pathlib import Path
from typing import Any, Literal

EventType = Literal[
    "queued",
    "run_started",
    "estimate",
    "phase",
    "mining_progress",
    "mining_done",
    "precision",
    "train_step",
    "eval",
    "checkpoint",
    "merged",
    "warning",
    "finished",
    "stopped",
    "failed",
]
TERMINAL = {"finished", "stopped", "failed"}
log = logging.getLogger("core.runs.events")  # a run's train.log gets every event too, next to any traceback


def _clean(value: Any) -> Any:
    """JSON has no NaN/inf; write null so every reader can parse the line."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if hasattr(value, "item") and callable(value.item):  # numpy / torch scalars
        return _clean(value.item())
    return value


class EventWriter:
    """Append-only writer, safe to share between the trainer's callback and the run's own code."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()

    def emit(self, type: EventType, **fields: Any) -> dict[str, Any]:
        event = {"type": type, "time": round(time.time(), 3), **_clean(fields)}
        line = json.dumps(event, ensure_ascii=False)
        with self._lock, self.path.open("a", encoding="utf-8") as f:
            f.write(line + "\n")
            f.flush()
        log.info(
            "%s %s",
            type,
            json.dumps({k: v for k, v in event.items() if k not in ("type", "time", "config")}, ensure_ascii=False)[
                :2000
            ],
        )
        return event


def read_events(path: str | Path, offset: int = 0) -> tuple[list[dict[str, Any]], int]:
    """Events from byte `offset` on, and the offset to pass next time. A half-written last line is left for later."""
    path = Path(path)
    if not path.exists():
        return [], offset
    with path.open("rb") as f:
        f.seek(offset)
        chunk = f.read()
    end = chunk.rfind(b"\n")
    if end < 0:
        return [], offset
    events = []
    for raw in chunk[: end + 1].splitlines():
        if raw.strip():
            try:
                events.append(json.loads(raw))
            except json.JSONDecodeError:  # a torn line from a crashed writer: skip it, keep following
                continue
    return events, offset + end + 1

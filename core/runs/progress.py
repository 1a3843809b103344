"""Per-phase progress of a run: `phase` events {phase, done, total, eta_s}, and reading them back.

A run goes through PHASES in order (mining and the evaluations may be skipped). Each phase writes an event when it
starts (done=0) and when it ends (done=total); training writes one per logged step. The ETA of a phase is what is
left of the estimate for it (core.training.estimate, when one was made) until progress within the phase gives a better one.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from core.runs.events import TERMINAL, EventWriter

log = logging.getLogger("core")

PHASES = ["loading", "mining", "baseline", "training", "final_evaluation", "saving"]
LABELS = {
    "loading": "loading",
    "mining": "mining (encoding)",
    "baseline": "evaluating baseline",
    "training": "training",
    "final_evaluation": "final evaluation",
    "saving": "saving",
}


class PhaseTracker:
    """Writes `phase` events; `estimate` is core.training.estimate's result (or None)."""

    def __init__(self, writer: EventWriter, estimate: dict[str, Any] | None = None):
        self.writer, self.estimate = writer, estimate
        self.started: dict[str, float] = {}

    def _guess(self, phase: str) -> float | None:
        return (self.estimate or {}).get("phases", {}).get(phase)

    def start(self, phase: str, total: int = 1) -> None:
        self.started[phase] = time.time()
        self.writer.emit("phase", phase=phase, done=0, total=total, eta_s=self._guess(phase))

    def update(self, phase: str, done: int, total: int, eta_s: float | None = None) -> None:
        """Progress within a phase; without `eta_s`, extrapolated from the time so far."""
        t0 = self.started.setdefault(phase, time.time())
        done = min(done, total)  # a count of texts may run past its estimated total
        if eta_s is None and done:
            eta_s = (time.time() - t0) / done * max(0, total - done)
        self.writer.emit("phase", phase=phase, done=done, total=total, eta_s=None if eta_s is None else round(eta_s, 1))

    def end(self, phase: str, total: int = 1) -> None:
        self.writer.emit(
            "phase",
            phase=phase,
            done=total,
            total=total,
            eta_s=0.0,
            elapsed_s=round(time.time() - self.started.get(phase, time.time()), 2),
        )


def phase_times(events: list[dict[str, Any]]) -> dict[str, float]:
    """Seconds each phase took (or has taken so far, for the live one) from a run's events."""
    out: dict[str, float] = {}
    phase_events = [e for e in events if e.get("type") == "phase"]
    first: dict[str, float] = {}
    for e in phase_events:
        first.setdefault(e["phase"], e["time"])
        if e.get("elapsed_s") is not None:
            out[e["phase"]] = e["elapsed_s"]
    if phase_events:
        last = phase_events[-1]
        if last["phase"] not in out:
            ended = next((e["time"] for e in reversed(events) if e.get("type") in TERMINAL), None)
            out[last["phase"]] = round((ended or time.time()) - first[last["phase"]], 2)
    return out


def phase_label(event: dict[str, Any]) -> str:
    """What a status line says for the newest phase event: a finished phase hands over to the next one."""
    phase = event["phase"]
    if event.get("total") and event.get("done", 0) >= event["total"] and phase in PHASES[:-1]:
        return f"preparing {LABELS[PHASES[PHASES.index(phase) + 1]]}" if phase != "loading" else "preparing data"
    return LABELS.get(phase, phase)


def current_phase(events: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The newest `phase` event, or None for a run written before phases existed."""
    return next((e for e in reversed(events) if e.get("type") == "phase"), None)


def format_eta(seconds: float | None, unknown: str = "–") -> str:
    """Seconds as m:ss or h:mm:ss (ETAs and estimates, in the CLI and the studio alike)."""
    if seconds is None:
        return unknown
    h, rest = divmod(int(round(seconds)), 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"

"""Start, follow and stop trainings from another process (the studio, a notebook, a script).

A training runs as `python -m core train --run-dir DIR` in a subprocess — exactly the CLI's code path — so a
crash or an out-of-memory kill cannot take the server down, Stop can always end it, and the memory is given
back when it ends. The run's events.jsonl is the only link back. One training at a time per server.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .config import EmbedConfig
from .events import TERMINAL, read_events
from .progress import current_phase, phase_label, phase_times
from .runs import CONFIG_FILE, EVENTS_FILE, LOG_FILE, new_run_dir, request_stop, run_state

PROJECT_ROOT = Path(__file__).resolve().parents[1]  # the folder holding `core/`: the child imports this very code
PROCESS_LOG = "process.log"  # the child's stdout and stderr: exists from the first byte, even if `core` cannot import


class BusyError(RuntimeError):
    """A training is already running on this server."""


@dataclass
class Job:
    run_dir: Path
    process: subprocess.Popen
    started: float


_lock = threading.Lock()
_job: Job | None = None


def active_job() -> Job | None:
    with _lock:
        if _job is not None and _job.process.poll() is None:
            return _job
        return None


def start_training(cfg: EmbedConfig, run_dir: str | Path | None = None) -> Path:
    """Write the config into a new run folder and start the training subprocess. Raises BusyError when one runs."""
    global _job
    with _lock:
        if _job is not None and _job.process.poll() is None and run_state(_job.run_dir)[0] in TERMINAL:
            # The run has written its last event and the process is only exiting: let it, rather than refuse.
            try:
                _job.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                _job.process.kill()
        if _job is not None and _job.process.poll() is None:
            raise BusyError(f"A training is already running ({_job.run_dir.name}). Stop it or wait for it to finish; "
                            "one training runs at a time on this server.")
        run_dir = Path(run_dir) if run_dir else new_run_dir(cfg.runs_dir, cfg.dataset_name)
        run_dir.mkdir(parents=True, exist_ok=True)
        cfg.save(run_dir / CONFIG_FILE)
        log = open(run_dir / PROCESS_LOG, "ab")
        env = child_env()
        process = subprocess.Popen(
            [sys.executable, "-m", "core", "train", "--config", str(run_dir / CONFIG_FILE), "--run-dir", str(run_dir)],
            stdout=log, stderr=subprocess.STDOUT, env=env, cwd=os.getcwd(),
        )
        log.close()
        _job = Job(run_dir, process, time.time())
        threading.Thread(target=_reap, args=(_job,), daemon=True).start()
        return run_dir


def child_env() -> dict[str, str]:
    """The training child's environment: the project first on PYTHONPATH, so `python -m core` runs the server's own
    code whatever the working directory, an installed copy of the package or the caller's PYTHONPATH."""
    path = [str(PROJECT_ROOT)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(path), "PYTHONUNBUFFERED": "1",
            "TOKENIZERS_PARALLELISM": "false"}


_ERROR_LINE = re.compile(r"^([A-Za-z_][\w.]*(Error|Exception|Interrupt|Exit)|Killed)\b")


def first_error(log_path: str | Path, limit: int = 64 * 1024) -> str | None:
    """The line that says what went wrong in a process log: a traceback's last line (`ModuleNotFoundError: No
    module named 'core'`), not its frames. None when there is none."""
    path = Path(log_path)
    if not path.is_file():
        return None
    with path.open("rb") as f:
        f.seek(max(0, path.stat().st_size - limit))
        lines = f.read().decode("utf-8", errors="replace").splitlines()
    found = [line.strip() for line in lines if _ERROR_LINE.match(line.strip())]
    return found[-1][:500] if found else None


def _reap(job: Job) -> None:
    """Wait for the subprocess; a process that died without a terminal event (killed, OOM) gets a `failed` one."""
    code = job.process.wait()
    state, _ = run_state(job.run_dir)
    if state in ("running", "interrupted"):
        from .events import EventWriter

        why = "the training process was stopped" if code in (-9, -15) else f"the training process exited with {code}"
        error = first_error(job.run_dir / PROCESS_LOG)
        logs = [name for name in (PROCESS_LOG, LOG_FILE) if (job.run_dir / name).is_file()] or [PROCESS_LOG]
        where = " and ".join(str(job.run_dir / name) for name in logs)
        EventWriter(job.run_dir / EVENTS_FILE).emit(
            "failed", message=(f"{error}\n" if error else "") + f"{why} (details in {where})")


def stop_training(run_dir: str | Path | None = None, wait_s: float = 0.0) -> Path | None:
    """Ask the running (or given) training to stop at its next step; it keeps the best model so far.
    With `wait_s`, wait that long and kill the process if it is still there."""
    job = active_job()
    target = Path(run_dir) if run_dir else (job.run_dir if job else None)
    if target is None:
        return None
    request_stop(target)
    if job is not None and job.run_dir == target and wait_s:
        try:
            job.process.wait(timeout=wait_s)
        except subprocess.TimeoutExpired:
            job.process.kill()
    return target


def run_status(run_dir: str | Path | None) -> dict[str, Any]:
    """A compact summary of a run from its events: what `training_status` returns."""
    if not run_dir:
        return {"state": "idle", "run_dir": None}
    run_dir = Path(run_dir)
    events, _ = read_events(run_dir / EVENTS_FILE)
    state, terminal = run_state(run_dir, events)
    job = active_job()
    if state == "interrupted" and job is not None and job.run_dir == run_dir:
        state = "running"  # started, not yet written its first event
    steps = [e for e in events if e["type"] == "train_step"]
    evals = [e for e in events if e["type"] == "eval"]
    last = steps[-1] if steps else {}
    baseline = next((e["metrics"] for e in evals if e.get("baseline")), {})
    mining = next((e for e in reversed(events) if e["type"] in ("mining_progress", "mining_done")), None)
    phase = ("done" if terminal else "training" if steps else "evaluating baseline" if mining and
             mining["type"] == "mining_done" else "mining" if mining else "loading")
    now = current_phase(events)
    if now is not None and not terminal:  # the run says which phase it is in; the guess above is for older runs
        phase = phase_label(now)
    return {
        "state": state,
        "phase": phase,
        "run_dir": str(run_dir),
        "run_id": run_dir.name,
        "step": last.get("step", 0),
        "max_steps": last.get("max_steps"),
        "epoch": last.get("epoch"),
        "loss": last.get("loss"),
        "eta_s": last.get("eta_s"),
        "phase_progress": None if terminal or now is None else {k: now.get(k) for k in ("phase", "done", "total",
                                                                                           "eta_s", "time")},
        "estimate": next((e for e in events if e["type"] == "estimate"), None),
        "phase_times": phase_times(events),
        "baseline": baseline,
        "metrics": evals[-1]["metrics"] if evals else {},
        "model_dir": (terminal or {}).get("model_dir"),
        "message": (terminal or {}).get("message"),
        "events": len(events),
    }

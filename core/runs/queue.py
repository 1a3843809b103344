"""Start, queue, follow and stop trainings from another process (the studio, a notebook, a script).

A training runs as `python -m core train --run-dir DIR` in a subprocess — exactly the CLI's code path — so a
crash or an out-of-memory kill cannot take the server down, Stop can always end it, and the memory is given
back when it ends. The run's events.jsonl is the only link back.

At most `STUDIO_MAX_TRAININGS` (default 1) run at once; later starts wait in a FIFO queue and start by themselves
when a slot frees, whoever is watching. Each running child holds a lock file (pid and process start time) in the
server's lock folder, so a restarted server sees a child that outlived it, counts it against the limit and
re-attaches to its run, while the lock of a dead process is cleared. The queue and the lock are the engine's: the
studio is one caller of this module.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.config.limits import max_trainings
from core.config.schema import EmbedConfig
from core.runs.events import TERMINAL, EventWriter, read_events
from core.runs.folders import CONFIG_FILE, EVENTS_FILE, new_run_dir, pid_alive, request_stop, run_state
from core.runs.process import PROCESS_LOG, child_env, mark_ended, start_time, train_command
from core.runs.progress import current_phase, phase_label, phase_times

log = logging.getLogger("core")
WAITING_FILE = "waiting.json"  # the queue's order, so waiting runs survive a server restart
POLL_S = 1.0


@dataclass
class Job:
    run_dir: Path
    submitted: float = field(default_factory=time.time)
    process: subprocess.Popen | None = None
    pid: int | None = None  # set for a running job; the only handle on a child adopted after a restart
    started: float | None = None
    time_limit_s: float | None = None
    nproc: int = 1  # data-parallel processes (torchrun) of this training

    def alive(self) -> bool:
        if self.process is not None:
            return self.process.poll() is None
        return self.pid is not None and pid_alive(self.pid)


class TrainingQueue:
    """FIFO queue of trainings with a bounded number running. One per server (see `queue()`)."""

    def __init__(self, locks_dir: str | Path):
        self.locks_dir = Path(locks_dir)
        self.locks_dir.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self.waiting: list[Job] = []
        self.running: list[Job] = []
        self._mean_duration: float | None = None  # of the runs this queue has seen end, for start estimates
        self._saved: str | None = None
        self._adopt()
        self._restore_waiting()
        self._monitor = threading.Thread(target=self._watch, name="training-queue", daemon=True)
        self._monitor.start()

    # ---- lock files: one per running child
    def _lock_path(self, run_dir: Path) -> Path:
        return self.locks_dir / f"{run_dir.name}.lock"

    def _adopt(self) -> None:
        """Children started by an earlier server process: keep the live ones, clear the locks of dead ones."""
        for path in sorted(self.locks_dir.glob("*.lock")):
            try:
                lock = json.loads(path.read_text(encoding="utf-8"))
                pid, run_dir = int(lock["pid"]), Path(lock["run_dir"])
            except (OSError, ValueError, KeyError, TypeError):
                path.unlink(missing_ok=True)
                continue
            started = start_time(pid)
            if started is not None and abs(started - float(lock.get("start_time", 0))) < 2 and pid_alive(pid):
                self.running.append(
                    Job(run_dir, pid=pid, started=lock.get("started"), time_limit_s=lock.get("time_limit_s"))
                )
            else:  # the process is gone (or the pid now belongs to another process)
                path.unlink(missing_ok=True)
                mark_ended(run_dir, None)

    def _restore_waiting(self) -> None:
        """Runs that were waiting when the server stopped wait again, in their order."""
        try:
            saved = json.loads((self.locks_dir / WAITING_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return
        for item in saved if isinstance(saved, list) else []:
            try:
                run_dir = Path(item["run_dir"])
            except (TypeError, KeyError):
                continue
            if run_dir.is_dir() and run_state(run_dir)[0] == "queued":
                self.waiting.append(
                    Job(
                        run_dir,
                        submitted=item.get("submitted", time.time()),
                        time_limit_s=item.get("time_limit_s"),
                        nproc=int(item.get("nproc", 1)),
                    )
                )

    def _save_waiting(self) -> None:
        data = [
            {"run_dir": str(j.run_dir), "submitted": j.submitted, "time_limit_s": j.time_limit_s, "nproc": j.nproc}
            for j in self.waiting
        ]
        text = json.dumps(data)
        if text == self._saved:  # the watcher pumps every second; write only what changed
            return
        self._saved = text
        self._write(WAITING_FILE, text)

    def _write(self, name: str, text: str) -> None:
        """Replace one state file of the lock folder, which is made again if something removed it meanwhile (a
        runs folder deleted under a running server): a Start must not fail, nor a started child go untracked, over
        the folder that only serves a later restart."""
        try:
            self.locks_dir.mkdir(parents=True, exist_ok=True)
            tmp = self.locks_dir / (name + ".tmp")
            tmp.write_text(text, encoding="utf-8")
            tmp.replace(self.locks_dir / name)
        except OSError as e:  # a full disk: the queue still runs from memory; a restart cannot adopt this child
            log.warning("could not write %s: %s", self.locks_dir / name, e)

    # ---- public operations
    def submit(self, run_dir: Path, time_limit_s: float | None = None, nproc: int = 1) -> dict[str, Any]:
        job = Job(Path(run_dir), time_limit_s=time_limit_s, nproc=nproc)
        with self._lock:
            self.waiting.append(job)
            EventWriter(job.run_dir / EVENTS_FILE).emit("queued", position=len(self.waiting))
            self._pump()
            return self.status_of(job.run_dir)

    def status_of(self, run_dir: str | Path) -> dict[str, Any]:
        """{"state": "queued", "position": N, "ahead": N-1} or {"state": "running"} or {"state": None}."""
        run_dir = Path(run_dir)
        with self._lock:
            for i, job in enumerate(self.waiting):
                if job.run_dir == run_dir:
                    return {
                        "state": "queued",
                        "position": i + 1,
                        "ahead": i,
                        "estimated_start_s": self._estimated_wait(i),
                    }
            if any(j.run_dir == run_dir for j in self.running):
                return {"state": "running"}
        return {"state": None}

    def cancel(self, run_dir: str | Path) -> bool:
        """Remove a waiting run from the queue (it ends as `stopped`). False when it is not waiting."""
        run_dir = Path(run_dir)
        with self._lock:
            job = next((j for j in self.waiting if j.run_dir == run_dir), None)
            if job is None:
                return False
            self.waiting.remove(job)
            self._save_waiting()
        EventWriter(run_dir / EVENTS_FILE).emit(
            "stopped",
            model_dir=None,
            message="Cancelled while waiting in the queue; nothing was trained.",
            cancelled=True,
        )
        return True

    def live(self) -> list[Path]:
        """Run folders of the running trainings, then the waiting ones in queue order. A run that has written its
        last event is not live, even while its process is still exiting."""
        with self._lock:
            running = [j.run_dir for j in self.running if j.alive() and run_state(j.run_dir)[0] not in TERMINAL]
            return running + [j.run_dir for j in self.waiting]

    # ---- internals
    def _estimated_wait(self, ahead: int) -> float | None:
        """Seconds until the run `ahead` places from the front starts: the running runs' ETAs, and for each run
        ahead of it the mean duration of the finished runs this queue has seen (None while nothing is known)."""
        etas = [_eta_of(j.run_dir) for j in self.running]
        if not etas or any(e is None for e in etas):
            return None
        soonest = min(etas)
        return soonest + ahead * (self._mean_duration or soonest) / max(1, max_trainings())

    def _pump(self) -> None:
        with self._lock:
            for job in [j for j in self.running if not j.alive()]:
                self.running.remove(job)
                self._finish(job)
            # A run that has written its last event is only exiting (saving, freeing memory): not a slot-holder.
            busy = [j for j in self.running if run_state(j.run_dir)[0] not in TERMINAL]
            while self.waiting and len(busy) < max_trainings():
                job = self.waiting.pop(0)
                if run_state(job.run_dir)[0] in TERMINAL:  # cancelled meanwhile
                    continue
                self._launch(job)
                self.running.append(job)
                busy.append(job)
            self._save_waiting()

    def _launch(self, job: Job) -> None:
        log = open(job.run_dir / PROCESS_LOG, "ab")
        job.process = subprocess.Popen(
            train_command(job.run_dir / CONFIG_FILE, job.run_dir, job.nproc),
            stdout=log,
            stderr=subprocess.STDOUT,
            env=child_env(),
            cwd=os.getcwd(),
        )
        log.close()
        job.pid, job.started = job.process.pid, time.time()
        lock = {
            "pid": job.pid,
            "start_time": start_time(job.pid) or 0.0,
            "run_dir": str(job.run_dir),
            "started": job.started,
            "time_limit_s": job.time_limit_s,
        }
        self._write(self._lock_path(job.run_dir).name, json.dumps(lock))

    def _finish(self, job: Job) -> None:
        code = job.process.wait() if job.process is not None else None
        self._lock_path(job.run_dir).unlink(missing_ok=True)
        mark_ended(job.run_dir, code)
        if job.started:
            took = time.time() - job.started
            self._mean_duration = took if self._mean_duration is None else 0.7 * self._mean_duration + 0.3 * took

    def _watch(self) -> None:
        """Start waiting runs as slots free, reap ended ones, stop runs over their time limit."""
        while True:
            time.sleep(POLL_S)
            try:
                with self._lock:
                    for job in self.running:
                        over = job.time_limit_s and job.started and time.time() - job.started > job.time_limit_s
                        if over and job.run_dir.is_dir():  # a folder swept away under its run has nothing to stop
                            minutes = job.time_limit_s / 60
                            request_stop(
                                job.run_dir,
                                f"It reached this server's training time limit of {minutes:g} "
                                "min, so it stopped and kept its best model so far.",
                            )
                    self._pump()
            except Exception:  # the watcher must outlive any one bad run folder
                import logging

                logging.getLogger("core").exception("training queue")


def _eta_of(run_dir: Path) -> float | None:
    steps = [e for e in read_events(run_dir / EVENTS_FILE)[0] if e["type"] == "train_step"]
    return steps[-1].get("eta_s") if steps else None


_queue: TrainingQueue | None = None
_queue_lock = threading.Lock()


def queue(locks_dir: str | Path | None = None) -> TrainingQueue:
    """The server's queue; the first call (the studio passes its runs folder's `.locks`) decides where locks live."""
    global _queue
    with _queue_lock:
        if _queue is None:
            _queue = TrainingQueue(locks_dir or Path("runs") / ".locks")
        return _queue


def start_training(
    cfg: EmbedConfig, run_dir: str | Path | None = None, time_limit_s: float | None = None, nproc: int = 1
) -> tuple[Path, dict[str, Any]]:
    """Write the config into a new run folder and queue the training (`nproc` data-parallel processes; it starts at
    once when a slot is free). Returns (run_dir, {"state": "running"} or {"state": "queued", "position": N, ...})."""
    run_dir = Path(run_dir) if run_dir else new_run_dir(cfg.runs_dir, cfg.dataset_name)
    run_dir.mkdir(parents=True, exist_ok=True)
    cfg.save(run_dir / CONFIG_FILE)
    return run_dir, queue().submit(run_dir, time_limit_s, nproc)


def live_runs(within: str | Path | None = None) -> list[Path]:
    """Running then waiting run folders, only those under `within` when given (a visitor's folder)."""
    if _queue is None:
        return []
    root = Path(within).resolve() if within else None
    return [p for p in _queue.live() if root is None or p.resolve().is_relative_to(root)]


def held_runs(within: str | Path | None = None) -> list[Path]:
    """Run folders a training process still holds: running, exiting after its last event, or waiting. What must not
    be moved or deleted (a child writes by path until it exits)."""
    if _queue is None:
        return []
    root = Path(within).resolve() if within else None
    with _queue._lock:
        held = [j.run_dir for j in _queue.running if j.alive()] + [j.run_dir for j in _queue.waiting]
    return [p for p in held if root is None or p.resolve().is_relative_to(root)]


def stop_training(run_dir: str | Path | None = None, wait_s: float = 0.0) -> Path | None:
    """Ask a running training to stop at its next step (it keeps the best model so far), or take a waiting one out
    of the queue. No `run_dir` = every live run. With `wait_s`, wait that long and kill what is still there."""
    targets = [Path(run_dir)] if run_dir else live_runs()
    if not targets:
        return None
    q = _queue
    for target in targets:
        if q is not None and q.cancel(target):
            continue
        request_stop(target)
    if wait_s and q is not None:
        deadline = time.time() + wait_s
        for job in list(q.running):
            if job.run_dir in targets and job.process is not None:
                try:
                    job.process.wait(timeout=max(0.1, deadline - time.time()))
                except subprocess.TimeoutExpired:
                    job.process.kill()
        q._pump()
    return targets[0]


def run_status(run_dir: str | Path | None) -> dict[str, Any]:
    """A compact summary of a run from its events: what `training_status` returns."""
    if not run_dir:
        return {"state": "idle", "run_dir": None}
    run_dir = Path(run_dir)
    events, _ = read_events(run_dir / EVENTS_FILE)
    state, terminal = run_state(run_dir, events)
    queued = _queue.status_of(run_dir) if _queue is not None else {"state": None}
    if state not in TERMINAL and queued["state"]:
        state = queued["state"]  # waiting for its turn, or started and not yet written its first event
    steps = [e for e in events if e["type"] == "train_step"]
    evals = [e for e in events if e["type"] == "eval"]
    last = steps[-1] if steps else {}
    baseline = next((e["metrics"] for e in evals if e.get("baseline")), {})
    mining = next((e for e in reversed(events) if e["type"] in ("mining_progress", "mining_done")), None)
    phase = (
        "done"
        if terminal
        else "queued"
        if state == "queued"
        else "training"
        if steps
        else "evaluating baseline"
        if mining and mining["type"] == "mining_done"
        else "mining"
        if mining
        else "loading"
    )
    now = current_phase(events)
    if now is not None and not terminal:  # the run says which phase it is in; the guess above is for older runs
        phase = phase_label(now)
    out = {
        "state": state,
        "phase": phase,
        "run_dir": str(run_dir),
        "run_id": run_dir.name,
        "world_size": next((e.get("world_size", 1) for e in events if e["type"] == "run_started"), 1),
        "step": last.get("step", 0),
        "max_steps": last.get("max_steps"),
        "epoch": last.get("epoch"),
        "loss": last.get("loss"),
        "eta_s": last.get("eta_s"),
        "phase_progress": None
        if terminal or now is None
        else {k: now.get(k) for k in ("phase", "done", "total", "eta_s", "time")},
        "estimate": next((e for e in events if e["type"] == "estimate"), None),
        "phase_times": phase_times(events),
        "baseline": baseline,
        "metrics": evals[-1]["metrics"] if evals else {},
        "model_dir": (terminal or {}).get("model_dir"),
        "message": (terminal or {}).get("message"),
        "events": len(events),
    }
    if state == "queued":
        out.update(position=queued["position"], ahead=queued["ahead"], estimated_start_s=queued["estimated_start_s"])
    return out

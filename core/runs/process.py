"""The training child process: the command and environment it starts with, whether a pid is still it, and the
`failed` event for one that ended without writing its own (killed, out of memory, `core` not importable), with the
first real error line of its log. The queue that starts and watches children is core/runs/queue.py."""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

from core.runs.events import TERMINAL, EventWriter
from core.runs.folders import EVENTS_FILE, LOG_FILE, run_state
from core.runs.record import LAUNCHER_ENV

PROJECT_ROOT = Path(__file__).resolve().parents[2]  # the folder holding `core/`: the child imports this very code
PROCESS_LOG = "process.log"  # the child's stdout and stderr: exists from the first byte, even if `core` cannot import


def start_time(pid: int) -> float | None:
    import psutil

    try:
        return psutil.Process(pid).create_time()
    except psutil.Error:
        return None


def mark_ended(run_dir: Path, code: int | None) -> None:
    """A process that ended without a terminal event (killed, out of memory, `core` not importable) gets a `failed`
    one: its first real error line and the log files that exist."""
    state, _ = run_state(run_dir)
    if state not in TERMINAL:
        why = (
            "the training process was stopped"
            if code in (-9, -15)
            else f"the training process exited with {code}"
            if code is not None
            else "the training process ended"
        )
        error = first_error(run_dir / PROCESS_LOG)
        logs = [name for name in (PROCESS_LOG, LOG_FILE) if (run_dir / name).is_file()] or [PROCESS_LOG]
        where = " and ".join(str(run_dir / name) for name in logs)
        EventWriter(run_dir / EVENTS_FILE).emit(
            "failed", message=(f"{error}\n" if error else "") + f"{why} (details in {where})"
        )


def train_command(config_path: str | Path, run_dir: str | Path, nproc: int = 1) -> list[str]:
    """The CLI command of one training; with nproc > 1 it starts the workers under torchrun and follows them."""
    cmd = [sys.executable, "-m", "core", "train", "--config", str(config_path), "--run-dir", str(run_dir)]
    return cmd + (["--nproc", str(nproc)] if nproc > 1 else [])


def child_env() -> dict[str, str]:
    """The training child's environment: the project first on PYTHONPATH, so `python -m core` runs the server's own
    code whatever the working directory, an installed copy of the package or the caller's PYTHONPATH."""
    path = [str(PROJECT_ROOT)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    return {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(path),
        "PYTHONUNBUFFERED": "1",
        LAUNCHER_ENV: "studio",  # the run's record.json says the studio started it
        "TOKENIZERS_PARALLELISM": "false",
    }


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

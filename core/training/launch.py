"""Data-parallel training under torchrun: the launch command and one worker's entry point (what the ranks share
is `ranks.py`; which rank this process is, `core.models.devices`).

`python -m core train --nproc N` (and the studio's Start with N processes) plans the run folder, then starts
`python -m torch.distributed.run ... -m core.training.launch --run-dir DIR` and follows the run's events.jsonl like any
other reader. Every worker runs the same `training.train`; the trainer (accelerate) does the data parallelism.

Mining and the baseline evaluation run inside the workers, once, on rank 0, with `model.encode` spread over every
rank by the library's `distributed_evaluation` (the same mechanism the trainer uses for evaluations during
training); the result is broadcast to the other ranks. Preparing inside the launcher instead would leave every other
node waiting on a file before it may even start torchrun, and would leave the other GPUs idle while encoding.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from core.config.schema import load_config
from core.runs.events import EventWriter
from core.runs.folders import (
    CONFIG_FILE,
    EVENTS_FILE,
    LOG_FILE,
    PID_FILE,
    STOP_FILE,
    request_stop,
    run_state,
    write_json,
)
from core.training.run import train

WORKERS_LOG = "workers.log"


@dataclass
class Launch:
    nproc: int = 1
    nnodes: int = 1
    node_rank: int = 0
    master_addr: str | None = None
    master_port: int | None = None

    @property
    def distributed(self) -> bool:
        return self.nproc > 1 or self.nnodes > 1


def torchrun_command(launch: Launch, run_dir: str | Path, resume_ckpt: str | None = None) -> list[str]:
    """The torchrun command line for the workers of one run (run from the venv's python, so no PATH lookup)."""
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", str(launch.nproc)]
    if launch.nnodes == 1 and not launch.master_addr:
        cmd.append("--standalone")  # one machine: torchrun picks a free port itself
    else:
        cmd += [
            "--nnodes",
            str(launch.nnodes),
            "--node-rank",
            str(launch.node_rank),
            "--master-addr",
            launch.master_addr or "127.0.0.1",
            "--master-port",
            str(launch.master_port or 29500),
        ]
    cmd += ["-m", "core.training.launch", "--run-dir", str(run_dir)]
    return cmd + (["--resume-from", str(resume_ckpt)] if resume_ckpt else [])


def _tie_to_launcher() -> None:
    """In the torchrun child: own session (a terminal's Ctrl-C reaches only the launcher, which turns it into a
    graceful stop), and SIGTERM when the launcher dies, so that killing it never leaves workers behind."""
    os.setsid()
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def launch_and_follow(
    launch: Launch, run_dir: Path, resume_ckpt: str | None, follow: Callable[[Path, threading.Event], None]
) -> int:
    """Start the workers of `run_dir` under torchrun, follow its events, return torchrun's exit code. Ctrl-C (or
    SIGTERM) asks for a stop at the next step, a second one ends the workers. The workers' console output (library
    warnings, tracebacks) goes to workers.log in the run folder: what the user reads is the event stream."""
    run_dir.mkdir(parents=True, exist_ok=True)
    if launch.node_rank == 0:
        (run_dir / STOP_FILE).unlink(missing_ok=True)
        write_json(run_dir / PID_FILE, os.getpid())  # "running" until rank 0 writes its own
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "TOKENIZERS_PARALLELISM": "false"}
    log_path = run_dir / (WORKERS_LOG if launch.node_rank == 0 else f"workers-node{launch.node_rank}.log")
    with log_path.open("ab") as log:
        proc = subprocess.Popen(
            torchrun_command(launch, run_dir, resume_ckpt),
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=_tie_to_launcher,
        )
    print(f"{launch.nproc * launch.nnodes} processes under torchrun; their console output: {log_path}", flush=True)

    def ask_stop(signum, frame):
        if (run_dir / STOP_FILE).exists():
            proc.terminate()
            return
        request_stop(run_dir)
        print(
            "\nStopping every process after the current step (keeps the best model so far); Ctrl-C again to abort.",
            flush=True,
        )

    for s in (signal.SIGINT, signal.SIGTERM):
        signal.signal(s, ask_stop)
    done = threading.Event()
    threading.Thread(target=lambda: (proc.wait(), done.set()), daemon=True).start()
    if launch.node_rank == 0:
        follow(run_dir, done)
    code = proc.wait()
    if launch.node_rank == 0 and run_state(run_dir)[0] in ("running", "interrupted"):
        EventWriter(run_dir / EVENTS_FILE).emit(
            "failed", message=f"the training processes exited with {code} (see {LOG_FILE} and {WORKERS_LOG})"
        )
    return code


def worker_main(argv: list[str] | None = None) -> int:
    """One rank: `training.train` on the run folder's config. Signals become a stop request, which the ranks agree
    on at the next step (torchrun forwards the launcher's SIGTERM to every worker)."""
    p = argparse.ArgumentParser(prog="python -m core.training.launch", description="one torchrun worker of a training")
    p.add_argument("--run-dir", required=True)
    p.add_argument("--resume-from")
    a = p.parse_args(argv)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    stop = threading.Event()
    for s in (signal.SIGINT, signal.SIGTERM):
        signal.signal(s, lambda signum, frame: stop.set())
    cfg = load_config(str(Path(a.run_dir) / CONFIG_FILE), [])
    result = train(cfg, a.run_dir, a.resume_from, stop_event=stop)
    import torch.distributed as dist

    if dist.is_initialized():
        dist.destroy_process_group()
    return result.exit_code


if __name__ == "__main__":
    sys.exit(worker_main())

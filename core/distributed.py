"""Data-parallel training under torchrun: the launch command, who this process is, and what the ranks share.

`python -m core train --nproc N` (and the studio's Start with N processes) plans the run folder, then starts
`python -m torch.distributed.run ... -m core.distributed --run-dir DIR` and follows the run's events.jsonl like any
other reader. Every worker runs the same `training.train`; the trainer (accelerate) does the data parallelism.

Mining and the baseline evaluation run inside the workers, once, on rank 0, with `model.encode` spread over every
rank by the library's `distributed_evaluation` (the same mechanism the trainer uses for evaluations during
training); the result is broadcast to the other ranks. Preparing inside the launcher instead would leave every other
node waiting on a file before it may even start torchrun, and would leave the other GPUs idle while encoding.
"""

from __future__ import annotations

import argparse
import functools
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

# Rank 0 mines and evaluates the baseline while the other ranks wait on it: give that wait room (the default
# process-group timeout, 10 to 30 minutes, is shorter than mining a large corpus).
DDP_TIMEOUT_S = 4 * 3600
WORKERS_LOG = "workers.log"


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def rank() -> int:
    return int(os.environ.get("RANK", "0"))


def is_main() -> bool:
    return rank() == 0


def init_process_group():
    """Join the run's process group through accelerate's PartialState (the trainer reuses it). Returns the device
    this rank works on, or None when the run has a single process."""
    if world_size() <= 1:
        return None
    from accelerate import PartialState

    cpu = _cpu_only()
    return PartialState(cpu=cpu, backend="gloo" if cpu else None, timeout=timedelta(seconds=DDP_TIMEOUT_S)).device


def training_args() -> dict[str, Any]:
    """What the trainer's arguments need under torchrun: accelerate runs several CPU processes only when told the
    run is on CPUs (gloo); on GPUs it picks nccl itself."""
    if world_size() <= 1:
        return {}
    return {"ddp_timeout": DDP_TIMEOUT_S, **({"use_cpu": True, "ddp_backend": "gloo"} if _cpu_only() else {})}


def no_duplicates_sampler():
    """The trainer's `batch_sampler` for contrastive data: the library's no-duplicates batches in one process; under
    torchrun, no-duplicates batches of the *global* size cut into one slice per rank (`GlobalNoDuplicates`)."""
    from sentence_transformers.sentence_transformer.training_args import BatchSamplers

    if world_size() <= 1:
        return BatchSamplers.NO_DUPLICATES
    return functools.partial(_global_no_duplicates, world=world_size())


def _global_no_duplicates(dataset, batch_size: int, drop_last: bool, world: int, **kwargs):
    # A small factory, not a class at import time: sentence_transformers is heavy and this module is imported early.
    from sentence_transformers.base.sampler import DefaultBatchSampler, NoDuplicatesBatchSampler

    class GlobalNoDuplicates(DefaultBatchSampler):
        """The library's sampler keeps duplicates out of each process's batch only, so with gathered in-batch
        negatives a rank's positive can be another rank's negative, and 2 x 8 rows train differently from 1 x 16.
        This draws no-duplicates batches of the global size and yields their per-rank slices in order: accelerate
        hands batch i to rank i % world, so every rank gets its slice of the same global batch. Written here because
        neither library splits one global batch over ranks."""

        def __init__(self):
            super().__init__(dataset, batch_size=batch_size, drop_last=drop_last, **kwargs)
            self.whole = NoDuplicatesBatchSampler(dataset, batch_size=batch_size * world, drop_last=drop_last, **kwargs)

        def set_epoch(self, epoch: int) -> None:
            super().set_epoch(epoch)
            self.whole.set_epoch(epoch)

        def __iter__(self):
            for batch in self.whole:
                for start in range(0, len(batch), self.batch_size):
                    yield batch[start : start + self.batch_size]

        def __len__(self) -> int:
            if self.drop_last:
                return len(self.whole) * world
            return -(-len(dataset) // self.batch_size)

    return GlobalNoDuplicates()


def _cpu_only() -> bool:
    import torch

    return not torch.cuda.is_available()


def on_rank0(fn: Callable[[], Any], model) -> Any:
    """`fn()` run once, on rank 0, with `model.encode` sharded over every rank; its result is given to every rank.
    A single process just calls `fn`. An error on rank 0 ends the other ranks too (the library re-raises it there)."""
    if world_size() <= 1:
        return fn()
    from accelerate.utils import broadcast_object_list
    from sentence_transformers.util.distributed import distributed_evaluation

    box = [None]
    with distributed_evaluation(model) as main:
        if main:
            box[0] = fn()
    return broadcast_object_list(box, from_process=0)[0]


def local_devices() -> list[str] | None:
    """Every GPU of a single-process run on a machine with several, for the library's multi-process encoding; None
    otherwise (under torchrun `on_rank0` spreads the encoding over the ranks instead; CPUs encode as they always do)."""
    if world_size() > 1 or _cpu_only():
        return None
    import torch

    n = torch.cuda.device_count()
    return [f"cuda:{i}" for i in range(n)] if n > 1 else None


def agree(flag: bool, device) -> bool:
    """True on every rank when it is true on any: all ranks must stop at the same step or DDP waits forever."""
    if world_size() <= 1:
        return flag
    import torch
    import torch.distributed as dist

    t = torch.tensor([int(flag)], device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item())


class NullWriter:
    """The event writer of ranks other than 0: one event stream per run."""

    def emit(self, type: str, **fields: Any) -> dict[str, Any]:
        return {"type": type, **fields}


def max_processes(allow_cpu: bool = False) -> int:
    """Processes one machine can train with: one per GPU; on a CPU-only machine 1, or 2 to try it out."""
    import torch

    if torch.cuda.is_available():
        return max(1, torch.cuda.device_count())
    return 2 if allow_cpu else 1


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
    cmd += ["-m", "core.distributed", "--run-dir", str(run_dir)]
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
    from .events import EventWriter
    from .runs import EVENTS_FILE, LOG_FILE, PID_FILE, STOP_FILE, request_stop, run_state, write_json

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
    p = argparse.ArgumentParser(prog="python -m core.distributed", description="one torchrun worker of a training")
    p.add_argument("--run-dir", required=True)
    p.add_argument("--resume-from")
    a = p.parse_args(argv)
    from .config import load_config
    from .runs import CONFIG_FILE
    from .training import train

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

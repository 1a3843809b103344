"""What the ranks of one data-parallel training share: joining the process group, the trainer arguments and batch
sampler torchrun needs, work done once on rank 0, and agreeing on a stop. Launching the ranks is `launch.py`."""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from core.models.devices import _cpu_only, world_size

# Rank 0 mines and evaluates the baseline while the other ranks wait on it: give that wait room (the default
# process-group timeout, 10 to 30 minutes, is shorter than mining a large corpus).
DDP_TIMEOUT_S = 4 * 3600


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

"""Which devices and processes this process works with: the torchrun rank it is, and the GPUs a single process may
spread its encoding over. The lowest layer every encode (mining, evaluations, indexes) and every loss asks."""

from __future__ import annotations

import os


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def rank() -> int:
    return int(os.environ.get("RANK", "0"))


def is_main() -> bool:
    return rank() == 0


def _cpu_only() -> bool:
    import torch

    return not torch.cuda.is_available()


def local_devices() -> list[str] | None:
    """Every GPU of a single-process run on a machine with several, for the library's multi-process encoding; None
    otherwise (under torchrun `on_rank0` spreads the encoding over the ranks instead; CPUs encode as they always do)."""
    if world_size() > 1 or _cpu_only():
        return None
    import torch

    n = torch.cuda.device_count()
    return [f"cuda:{i}" for i in range(n)] if n > 1 else None


def max_processes(allow_cpu: bool = False) -> int:
    """Processes one machine can train with: one per GPU; on a CPU-only machine 1, or 2 to try it out."""
    import torch

    if torch.cuda.is_available():
        return max(1, torch.cuda.device_count())
    return 2 if allow_cpu else 1

"""Which devices and processes this process works with: the torchrun rank it is, and the GPUs a single process may
spread its encoding over. The lowest layer every encode (mining, evaluations, indexes) and every loss asks."""

from __future__ import annotations

import ctypes
import gc
import os
import platform


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


def hardware() -> tuple[bool, str]:
    """(whether trainings get a GPU, the hardware in words): the GPUs' name and memory, or the CPU's model and the
    cores this process may use."""
    import torch

    if torch.cuda.is_available():
        n = torch.cuda.device_count()
        props = torch.cuda.get_device_properties(0)
        gpu = f"{props.name}, {props.total_memory / 2**30:.0f} GB"
        return True, f"GPU: {n} × {gpu}" if n > 1 else f"GPU: {gpu}"
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    name = ""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            name = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), "")
    except OSError:
        pass
    return False, f"CPU: {name or platform.processor() or platform.machine()}, {cores} cores"


def release_freed_memory() -> int:
    """Hand the memory Python and torch have freed back to the system; returns the process's RSS in MB after.

    A CPU training step allocates gigabytes of activations in tensors of a few MB; glibc keeps what they free in its
    heaps (fragmented, so it is not returned on its own), and the next phase allocates anew beside it. Measured on
    the MedQuAD bench: after mining, the baseline evaluation and the precision probe the process held 3.5 GB, of
    which 2.8 GB was free heap; training then grew on top of it. `malloc_trim(0)` returns those pages (a no-op off
    glibc). Called between the run's phases; no library does this for a CPU training run."""
    gc.collect()
    if platform.system() == "Linux":
        try:
            ctypes.CDLL("libc.so.6").malloc_trim(0)
        except (OSError, AttributeError):  # not glibc (e.g. musl): nothing to trim
            pass
    try:
        with open("/proc/self/statm", encoding="ascii") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 2**20
    except (OSError, ValueError, IndexError):
        return 0

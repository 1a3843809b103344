"""What a run folder needs to be reproduced elsewhere: the command that started it (as typed: `python -m core …`,
`embedding-studio …`, the `make …` line above it, or the studio), the commands that rebuild its resolved config,
the library versions and the machine. Written as `record.json` when a run starts."""

from __future__ import annotations

import os
import platform
import shlex
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import Any

import psutil

RECORD_FILE = "record.json"
LAUNCHER_ENV = "CORE_LAUNCHER"  # set by whoever starts `python -m core` as a child (the studio: "studio")
# distribution names, as pip knows them; faiss ships under several
PACKAGES = {
    "torch": ["torch"],
    "sentence-transformers": ["sentence-transformers"],
    "transformers": ["transformers"],
    "faiss": ["faiss-cpu", "faiss-gpu", "faiss-gpu-cu12", "faiss"],
    "embedding-studio": ["embedding-studio"],
}


def versions() -> dict[str, str | None]:
    """Python's and the libraries' versions, read from the installed metadata (nothing imported)."""
    out: dict[str, str | None] = {"python": platform.python_version()}
    for label, names in PACKAGES.items():
        out[label] = next((v for v in map(_version, names) if v), None)
    return out


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace").splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> dict[str, Any]:
    """CPU model and cores, memory, and each GPU's name and memory (torch asked only when already imported)."""
    info: dict[str, Any] = {
        "platform": platform.platform(),
        "cpu": _cpu_model(),
        "cpu_cores": os.cpu_count(),
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "gpus": [],
    }
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        for i in range(torch.cuda.device_count()):
            props = torch.cuda.get_device_properties(i)
            info["gpus"].append({"name": props.name, "memory_gb": round(props.total_memory / 2**30, 1)})
    return info


def _ancestors() -> list[list[str]]:
    """The command lines of this process and its parents, nearest first (empty where one cannot be read)."""
    lines = []
    try:
        proc = psutil.Process()
        while proc is not None and proc.pid > 1:
            try:
                lines.append(proc.cmdline())
            except (psutil.AccessDenied, psutil.ZombieProcess):
                lines.append([])
            proc = proc.parent()
    except psutil.Error:
        pass
    return lines


def _is_core(argv: list[str]) -> bool:
    return ("core" in argv[1:3] and "-m" in argv[1:3]) or any(Path(a).name == "embedding-studio" for a in argv[:2])


def _launching_make(above: list[list[str]]) -> list[str] | None:
    """The make that started the command: its parent, or its grandparent through the shell make runs a recipe in.
    A make further up (a test suite run by `make test`, say) did not start it."""
    for line in above[:2]:
        name = Path(line[0]).name if line else ""
        if name in ("make", "gmake"):
            return line
        if name not in ("sh", "bash", "dash"):
            return None
    return None


def command(run_dir: str | Path) -> dict[str, Any]:
    """How this run was started and how to rebuild it. `argv` is the outermost `python -m core` (or
    `embedding-studio`) command among this process and its parents (a torchrun worker's launcher, not the worker);
    `make` the make command line above it, if any; `via` one of studio, make, cli."""
    chain = _ancestors()
    outer = max((i for i, c in enumerate(chain) if c and _is_core(c)), default=None)
    argv = chain[outer] if outer is not None else [sys.executable, *sys.argv]
    make = _launching_make(chain[(outer or 0) + 1 :])
    launcher = os.environ.get(LAUNCHER_ENV)
    config = Path(run_dir).resolve() / "config.yaml"
    return {
        "via": launcher or ("make" if make else "cli"),
        "argv": argv,
        "shell": shlex.join(argv),
        "make": shlex.join(make) if make else None,
        "cwd": os.getcwd(),
        # The run folder's config is the resolved one: either command rebuilds this run's settings exactly.
        "reproduce": [
            f"python -m core train --config {shlex.quote(str(config))}",
            f"make train-embed EMBED_CONFIG={shlex.quote(str(config))}",
        ],
    }


def run_record(run_dir: str | Path) -> dict[str, Any]:
    return {
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "command": command(run_dir),
        "versions": versions(),
        "machine": machine(),
    }

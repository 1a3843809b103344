"""A fresh clone's layout of this checkout, and commands run in it as a user types them.

The copy holds what `git clone` would give (tracked files and files not ignored), as they are in the working tree, so
the tests see the code under test; symlinks stay links. Make runs with the venv that runs the tests (VENV=…) and
`-o …/.installed`, so it never reinstalls into it."""

from __future__ import annotations

import os
import shlex
import shutil
import socket
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT

VENV = Path(sys.executable).parents[1]


def fresh_clone(dest: Path) -> Path:
    files = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.split(b"\0")
    for raw in filter(None, files):
        src = ROOT / os.fsdecode(raw)
        target = dest / os.fsdecode(raw)
        if (not src.exists() and not src.is_symlink()) or raw == b".venv":
            continue  # deleted in the working tree, not yet in git; or this checkout's link to its venv
        target.parent.mkdir(parents=True, exist_ok=True)
        if src.is_symlink():
            target.symlink_to(os.readlink(src))
        else:
            shutil.copy2(src, target)
    return dest


def make_argv(target: str, *args: str, dry_run: bool = False) -> list[str]:
    return ["make", *(["-n"] if dry_run else []), "-s", "-o", f"{VENV}/.installed", f"VENV={VENV}", target, *args]


def user_env(**extra: str) -> dict[str, str]:
    """The environment of a user's shell: offline (nothing is downloaded in tests), no PYTHONPATH of the test run."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTEST_CURRENT_TEST")}
    return {**env, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", **extra}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def core_line(dry_run_output: str, command: str = "train") -> list[str]:
    """The `python -m core <command> …` line that `make -n` prints, split as the shell splits it."""
    for line in dry_run_output.splitlines():
        words = shlex.split(line)
        if words[1:4] == ["-m", "core", command]:
            return words
    raise AssertionError(f"no `python -m core {command}` line in:\n{dry_run_output}")

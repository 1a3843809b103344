"""Where a server keeps what must outlive it: persistent storage.

A Hugging Face Space's disk is wiped on every restart, except `/data` when the Space has persistent storage. With
such a folder (`STUDIO_DATA_DIR`, else `/data` on a Space when it is writable) the studio's workspace (visitors'
folders and the server secret, uploads, exports) and runs folder (runs, models, the queue's state) live there, and
the Hugging Face cache (`HF_HOME`) and the encode probe default to it, so cached models survive restarts too.
Variables set explicitly (STUDIO_WORKSPACE, STUDIO_RUNS_DIR, HF_HOME, STUDIO_PROBE_CACHE) always win.
"""

from __future__ import annotations

import os
from pathlib import Path

SPACE_DATA = Path("/data")


def data_dir() -> Path | None:
    """The persistent folder, or None: `STUDIO_DATA_DIR` (created when missing), else `/data` on a Space when it
    exists and is writable."""
    env = os.environ.get("STUDIO_DATA_DIR", "").strip()
    if env:
        path = Path(env).expanduser().resolve()
        path.mkdir(parents=True, exist_ok=True)
        return path
    if os.environ.get("SPACE_ID") and SPACE_DATA.is_dir() and os.access(SPACE_DATA, os.W_OK | os.X_OK):
        return SPACE_DATA
    return None


def use_persistent_storage() -> Path | None:
    """Point the caches at persistent storage when there is some; call it before huggingface_hub is imported
    (it reads HF_HOME once). Returns the folder, or None."""
    root = data_dir()
    if root is not None:
        os.environ.setdefault("HF_HOME", str(root / ".huggingface"))
        os.environ.setdefault("STUDIO_PROBE_CACHE", str(root / ".cache"))
    return root


def default_dirs() -> tuple[Path, Path]:
    """Workspace and runs folders when no argument or variable names them: in persistent storage if any, else
    `./workspace` and `./runs` where the server starts."""
    root = data_dir()
    if root is None:
        return Path("workspace"), Path("runs")
    return root / "workspace", root / "runs"

"""Files every tab handles the same way: the project root, safe upload names, paths as the config stores them,
and the upload limits (size always, disk per visitor in public mode). Tabs import these from here, never from
another tab."""

from __future__ import annotations

import re
from pathlib import Path

from core.config.schema import ConfigError
from studio.context import StudioContext, Visitor
from studio.plots import format_size

ROOT = Path(__file__).resolve().parents[1]
MAX_UPLOAD_MB = 200  # bigger files belong on disk next to the server: point dataset_path at them in the config


def sanitise_name(name: str) -> str:
    """A safe file name: no directories, only [A-Za-z0-9._-], not hidden, at most 100 characters."""
    base = Path(str(name)).name
    stem, suffix = Path(base).stem, Path(base).suffix.lower()
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", stem).strip("._") or "upload"
    suffix = re.sub(r"[^a-z0-9.]", "", suffix)
    return stem[: 100 - len(suffix)] + suffix


def short_path(path: str | Path) -> str:
    """A path as the config stores it: relative to the working directory when inside it (the training subprocess
    runs there, and `make` commands read better), absolute otherwise."""
    path = Path(path).resolve()
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def size_error(path: str | Path, limit_mb: float = MAX_UPLOAD_MB) -> str | None:
    size = Path(path).stat().st_size
    if size > limit_mb * 1024 * 1024:
        return (
            f"{Path(path).name} is {format_size(size)}; uploads are limited to {limit_mb:g} MB. "
            "Put big files on the server's disk and set dataset_path in the Config tab instead."
        )
    return None


def upload_dir(v: Visitor, *sub: str) -> Path:
    """The visitor's upload folder (server-made names only: never the client's session hash)."""
    path = v.uploads.joinpath(*sub)
    path.mkdir(parents=True, exist_ok=True)
    return path


def upload_problem(ctx: StudioContext, v: Visitor, path: str | Path) -> str | None:
    """Why this upload is over a limit in force (size always; disk per visitor in public mode), or None."""
    problem = size_error(path, ctx.limits.upload_mb if v.public else MAX_UPLOAD_MB)
    if problem is None and v.public:
        try:
            v.check_disk()
        except ConfigError as exc:
            problem = exc.errors[0]
    return problem

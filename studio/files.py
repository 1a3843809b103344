"""Files every tab handles the same way: the project root, safe upload names, paths as the config stores them,
and the upload limits (size always, disk per visitor in public mode). Tabs import these from here, never from
another tab."""

from __future__ import annotations

import re
from pathlib import Path

from core.config.assets import ASSETS
from core.config.schema import ConfigError
from studio.context import StudioContext, Visitor
from studio.plots import format_size

ROOT = Path(__file__).resolve().parents[1]
MAX_UPLOAD_MB = 200  # bigger files belong on disk next to the server: point dataset_path at them in the config
# Any path into a visitor's folder, absolute or relative to the server's directory, up to and including the folder
_VISITOR_DIR = re.compile(r"[^\s`'\"(\[{<>,;=]*?visitors/[A-Za-z0-9_-]{32}(/|(?![A-Za-z0-9_-]))")
_GRADIO_CACHE = re.compile(r"[^\s`'\"(\[{<>,;=]*?/gradio/[0-9a-f]{16,}/")


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


def size_error(path: str | Path, limit_mb: float = MAX_UPLOAD_MB, public: bool = False) -> str | None:
    size = Path(path).stat().st_size
    if size > limit_mb * 1024 * 1024:
        fix = (
            "Upload a smaller file (a sample of its rows, or split it)."
            if public
            else "Put big files on the server's disk and set dataset_path in the Config tab instead."
        )
        return f"{Path(path).name} is {format_size(size)}; uploads are limited to {limit_mb:g} MB. {fix}"
    return None


def upload_limit_mb(ctx: StudioContext) -> float:
    """The one upload limit every upload box states and every upload handler checks."""
    return ctx.limits.upload_mb if ctx.public else MAX_UPLOAD_MB


def transfer_limit_mb(upload_mb: float) -> float:
    """What Gradio itself accepts (launch's max_file_size): above the studio's own limit, so that a file somewhat
    over it reaches the handler, which refuses it with the reason on the panel (Gradio's own refusal is a toast that
    vanishes and a bare "Error" on the box); still a hard bound on what a stranger can send."""
    return 2 * upload_mb


def upload_dir(v: Visitor, *sub: str) -> Path:
    """The visitor's upload folder (server-made names only: never the client's session hash)."""
    path = v.uploads.joinpath(*sub)
    path.mkdir(parents=True, exist_ok=True)
    return path


def upload_problem(ctx: StudioContext, v: Visitor, path: str | Path) -> str | None:
    """Why this upload is over a limit in force (size always; disk per visitor in public mode), or None."""
    problem = size_error(path, upload_limit_mb(ctx), v.public)
    if problem is None and v.public:
        try:
            v.check_disk()
        except ConfigError as exc:
            problem = exc.errors[0]
    return problem


def hide_paths(text: str, public: bool = True) -> str:
    """`text` as a public visitor may read it: paths inside their folder relative to it ("runs/…/model"), shipped
    files relative to the project ("assets/samples/…"; the project's folder itself "."), Gradio's upload cache gone;
    unchanged locally."""
    if not public or not isinstance(text, str):
        return text
    text = _VISITOR_DIR.sub(lambda m: "" if m.group(1) == "/" else "your folder", text)
    text = _GRADIO_CACHE.sub("", text)
    for base in sorted({str(ROOT), str(Path.cwd())} - {"/"}, key=len, reverse=True):  # the server's own folders
        text = re.sub(re.escape(base) + r"(?:/|(?![\w.-]))", lambda m: "" if m.group(0).endswith("/") else ".", text)
    return text


def shown_path(value: str | None, v: Visitor) -> str | None:
    """A path as this visitor sees it (and may give back: relative paths are theirs in public mode)."""
    if not value or not v.public:
        return value
    path = Path(value)
    resolved = path.resolve() if path.is_absolute() or (Path.cwd() / path).exists() else None
    if resolved is not None:
        # shipped files as `assets/…` (the name README uses; the sandbox finds it checkout or installed)
        for base, prefix in ((Path(v.root).resolve(), ""), (ASSETS, "assets/"), (ROOT, "")):
            if resolved.is_relative_to(base):
                return (prefix + str(resolved.relative_to(base))) if resolved != base else prefix or "."
    return hide_paths(str(value))

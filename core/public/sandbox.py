"""Confined paths: the one rule every path a public visitor gives passes through.

Resolve the path (relative paths are taken inside the visitor's folder; symlinks and `..` are resolved), then
require it to lie inside the visitor's folder, or, for reading, inside a shipped read-only root (the samples, the
bundled model). Anything else is refused with the key and the reason before a file is read or written. A model is
the bundled one, a folder passing the same rule, or a hub id already cached on the server (downloads only when
the server allows them). A local studio (one trusted user) uses no Sandbox at all.
"""

from __future__ import annotations

from pathlib import Path

from core.config.assets import ASSETS
from core.config.schema import ConfigError, EmbedConfig, build_config
from core.models.load import BUNDLED_NAMES, bundled_model_path, is_cached_hub_id

PROJECT_ROOT = Path(__file__).resolve().parents[2]
SAMPLES_ROOT = ASSETS
READ_KEYS = ("dataset_path", "corpus_path")
WRITE_KEYS = ("output_dir", "runs_dir", "cache_dir")
OWN_FOLDERS = ("outputs", "runs")  # where a visitor's models are saved (output_dir and runs_dir by default)


class PathRefused(ConfigError):
    """A path or model outside what this visitor may use."""

    def __init__(self, key: str, reason: str):
        self.key = key
        super().__init__([f"{key}: {reason}"], "public mode")
        self.args = (f"Refused ({key}): {reason}",)

    def __str__(self) -> str:
        return self.args[0]


def _shown(value: object) -> str:
    text = str(value)
    return repr(text if len(text) <= 80 else text[:77] + "...")


class Sandbox:
    """What one visitor may read and write. `root` is theirs; `read_roots` are shipped read-only folders."""

    def __init__(self, root: str | Path, read_roots: list[Path] | None = None, allow_downloads: bool = False):
        self.root = Path(root).resolve()
        self.read_roots = [Path(p).resolve() for p in (read_roots if read_roots is not None else default_read_roots())]
        self.allow_downloads = allow_downloads

    def path(self, value: str | Path, key: str, write: bool = False) -> Path:
        """The resolved path, or PathRefused. Relative paths live in the visitor's folder; for reading, a relative
        path naming a shipped file (e.g. `assets/samples/…`) is found there too."""
        text = str(value).strip()
        if not text or "\x00" in text:
            raise PathRefused(key, "not a path")
        raw = Path(text)
        if raw.is_absolute() or text.startswith("~"):
            candidates = [raw]  # `~` is not expanded: the server's home is nobody's folder
        else:
            # the visitor's folder first; then the server's working directory and the project (the studio stores
            # upload paths relative to where it runs, and samples as `assets/...`), each still checked below
            shipped = [PROJECT_ROOT / raw, ASSETS.parent / raw]  # `assets/…` in a checkout or an installed package
            candidates = [self.root / raw, Path.cwd() / raw] + ([] if write else shipped)
        allowed = [self.root] + ([] if write else self.read_roots)
        inside = [c.resolve() for c in candidates]
        inside = [r for r in inside if any(r.is_relative_to(a) for a in allowed)]
        if inside:  # the first that exists, else the visitor's own (a reader then says it is missing)
            return next((r for r in inside if r.exists()), inside[0])
        where = "your own folder" if write else "your own folder or the shipped samples"
        raise PathRefused(key, f"{_shown(value)} is outside {where}; public mode reads and writes nothing else")

    def model(self, name: str | None, key: str = "model_name") -> str:
        """A model this visitor may load: the bundled one, a folder of theirs, or a cached hub id."""

        name = (name or "").strip()
        if not name or name.lower() in BUNDLED_NAMES:
            return name
        looks_like_path = name.startswith((".", "/", "~")) or name.count("/") != 1 or (self.root / name).exists()
        if looks_like_path:
            path = self.path(name, key)
            if not path.is_dir():
                raise PathRefused(key, f"no model folder at {_shown(name)} in your folder")
            return str(path)
        if is_cached_hub_id(name) or self.allow_downloads:
            return name
        first = name.split("/")[0]
        if first in OWN_FOLDERS or (self.root / first).is_dir():  # a folder of theirs not made yet, not a hub id
            raise PathRefused(key, f"no model at {_shown(name)} yet: train a model first, or pick another")
        raise PathRefused(
            key,
            f"{_shown(name)} is not cached on this server, and public mode downloads no models. "
            "Use the bundled model, one you fine-tuned here, or a model the server already has.",
        )

    def config(self, cfg: EmbedConfig) -> EmbedConfig:
        """`cfg` with every path and model checked and made absolute. Raises PathRefused on the first refusal."""
        data = cfg.to_dict()
        if not data.get("dataset_path"):  # else dataset_name would be looked up as a server path or a hub id
            raise PathRefused("dataset_path", "public mode trains on a file you uploaded or a shipped sample: set it")
        for key in READ_KEYS:
            if data.get(key):
                data[key] = str(self.path(data[key], key))
        for key in WRITE_KEYS:
            data[key] = str(self.path(data[key], key, write=True))
        if data["mining"].get("exclude_path"):
            data["mining"]["exclude_path"] = str(
                self.path(data["mining"]["exclude_path"], "mining.exclude_path", write=True)
            )
        for key in ("model_name", "mining_model_name"):
            if data.get(key):
                data[key] = self.model(data[key], key)
        resume = data.get("resume")
        if isinstance(resume, str) and resume.strip().lower() not in {"true", "yes", "1", "false", "no", "0", ""}:
            data["resume"] = str(self.path(resume, "resume", write=True))
        return build_config(data, source="public mode")


def default_read_roots() -> list[Path]:
    """The shipped samples and the bundled model's folder (when its package is installed)."""
    roots = [SAMPLES_ROOT]
    try:
        roots.append(Path(bundled_model_path()))
    except Exception:  # no bundled model installed: nothing to allow there
        pass
    return roots

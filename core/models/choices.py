"""The models a picker offers: the base and bundled models, a run's and output_dir's fine-tuned models, the local
Hugging Face cache, and the guide's suggestions, each labelled with where it comes from and its size."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from core.models.load import BUNDLED_NAMES, ModelError, bundled_model_path, is_model_dir
from core.runs.folders import list_runs

# The models the guide names ("Model Selection", "Domain-Specific Models"), with the role it gives each and the
# dimension and size (MB) of their weights, for pickers before they are downloaded.
SUGGESTED_MODELS = {
    "sentence-transformers/all-MiniLM-L6-v2": ("fast", 384, 87),
    "sentence-transformers/static-retrieval-mrl-en-v1": ("balanced", 1024, 120),
    "sentence-transformers/stsb-roberta-large": ("high quality", 1024, 1355),
    "sentence-transformers/allenai-specter": ("biomedical", 768, 420),
    "sentence-transformers/legal-roberta-base": ("legal", 768, 476),
    "sentence-transformers/paraphrase-multilingual-MiniLM-L12-v2": ("multilingual", 384, 449),
}


def model_dim(path: str | Path) -> int | None:
    """The embedding dimension a saved sentence-transformers model writes in its module configs (None if unknown)."""

    path = Path(path)
    try:
        modules = json.loads((path / "modules.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    dim = None
    for m in modules:
        try:
            cfg = json.loads((path / m.get("path", "") / "config.json").read_text(encoding="utf-8"))
        except (OSError, ValueError, TypeError):
            continue
        for key in ("out_features", "embedding_dimension", "word_embedding_dimension", "hidden_size"):
            if isinstance(cfg.get(key), int):
                dim = cfg[key] if key != "hidden_size" or dim is None else dim
                break
    return dim


def _size_mb(path: Path) -> int:
    return round(sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 2**20)


def _cached_models(hf_cache: str | Path | None = None) -> dict[str, Path]:
    """Hub id -> snapshot folder of every sentence-transformers model (a modules.json) in the local HF cache."""
    try:
        from huggingface_hub import scan_cache_dir

        repos = scan_cache_dir(hf_cache).repos
    except Exception:  # no cache folder yet, or an unreadable one: nothing cached
        return {}
    out = {}
    for repo in repos:
        if repo.repo_type != "model":
            continue
        for rev in sorted(repo.revisions, key=lambda r: r.last_modified, reverse=True):
            if (Path(rev.snapshot_path) / "modules.json").is_file():
                out[repo.repo_id] = Path(rev.snapshot_path)
                break
    return out


def model_choices(
    runs_dir: str | Path | None = None,
    base_model: str | None = None,
    output_dir: str | None = None,
    hf_cache: str | Path | None = None,
) -> list[dict[str, Any]]:
    """Models worth offering in a picker, each {value, label, source, dim, size_mb, cached}: the base model, the
    bundled MiniLM, output_dir and every run's model (newest first), every sentence-transformers model in the
    local Hugging Face cache (`hf_cache`, default the usual one), then the models the guide names (the label gives
    the guide's role for each, and says "needs download" when not cached)."""

    cached = _cached_models(hf_cache)
    found: list[tuple[str, str, Path | None]] = []
    if base_model:
        found.append((base_model, "base", None))
    found.append(("sentence-transformers/all-MiniLM-L6-v2", "bundled", None))
    if output_dir and Path(output_dir).is_dir():
        found.append((str(output_dir), "fine-tuned", Path(output_dir)))
    for run in list_runs(runs_dir) if runs_dir else []:
        model = Path(run.path) / "model"
        if is_model_dir(model):
            found.append((str(model), "fine-tuned", model))
    found += [(repo, "cached", path) for repo, path in cached.items()]
    found += [(name, "suggested", None) for name in SUGGESTED_MODELS]
    out, seen = [], set()
    for value, source, path in found:
        if value in seen:
            continue
        seen.add(value)
        out.append(_describe(value, source, path, cached))
    return out


def _describe(value: str, source: str, path: Path | None, cached: dict[str, Path]) -> dict[str, Any]:
    if path is None and value.lower() in BUNDLED_NAMES:
        try:
            path, source = Path(bundled_model_path()), "bundled"
        except ModelError:
            pass
    if path is None and value in cached:
        path, source = cached[value], "cached" if source == "suggested" else source
    if path is None and Path(value).is_dir():
        path = Path(value)
    role, known_dim, known_size = SUGGESTED_MODELS.get(value, (None, None, None))
    dim = (model_dim(path) if path else None) or known_dim
    size = _size_mb(path) if path else known_size
    needs = path is None
    parts = [source + (", needs download" if needs else "")] + ([f"guide: {role}"] if role else [])
    parts += [f"{dim}-d"] if dim else []
    parts += [f"{size} MB"] if size else []
    # The name last: a picker shows the label, and a path reads best whole at the end.
    return {
        "value": value,
        "label": f"[{' · '.join(parts)}] {value}",
        "source": source,
        "dim": dim,
        "size_mb": size,
        "cached": not needs,
    }

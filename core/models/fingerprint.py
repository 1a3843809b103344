"""`model_fingerprint(dir)`: a digest of what makes a model encode as it does (weights, configs, tokenizer files),
so an artefact made with one model (a document index) can tell whether another folder holds the same model."""

from __future__ import annotations

import hashlib
import json
from functools import lru_cache
from pathlib import Path

from core.models.load import resolve_model

FINGERPRINT_SUFFIXES = (".json", ".safetensors", ".bin", ".txt", ".model", ".pt")
FINGERPRINT_SKIP = {"README.md", "onnx_config.json"}
NOT_MODEL_DIRS = {"index", "onnx", "checkpoints"}  # what may sit in a model folder without changing the model


def _file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            h.update(block)
    return h.hexdigest()


@lru_cache(maxsize=32)
def _fingerprint(path: str, stamp: tuple) -> str:
    root = Path(path)
    onnx_cfg = root / "onnx_config.json"
    if onnx_cfg.exists():  # an ONNX copy (core/models/onnx_export.py) encodes as its source model does
        return json.loads(onnx_cfg.read_text(encoding="utf-8"))["source_fingerprint"]
    h = hashlib.sha256()
    for rel, _ in stamp:
        h.update(rel.encode())
        h.update(_file_digest(root / rel).encode())
    return h.hexdigest()[:24]


def _model_files(root: Path) -> list[Path]:
    return sorted(
        p
        for p in [*root.glob("*"), *root.glob("*/*")]
        if p.is_file()
        and p.name not in FINGERPRINT_SKIP
        and p.suffix in FINGERPRINT_SUFFIXES
        and not NOT_MODEL_DIRS & set(p.relative_to(root).parts[:-1])
    )


def model_fingerprint(model_dir: str | Path) -> str:
    """A digest of the model's weights, configs and tokenizer files (not its README): the same model copied
    elsewhere keeps it, a retrained one gets another. Cached per file modification times."""
    root = Path(resolve_model(str(model_dir)))
    stamp = tuple((p.relative_to(root).as_posix(), p.stat().st_mtime_ns) for p in _model_files(root))
    return _fingerprint(str(root), stamp)

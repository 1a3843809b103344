"""The estimate's probe: a few real encodes and training steps of this config on this machine, cached.

It loads the model, encodes real texts with the encoder runs use (core.models.encoding), runs a few optimizer steps of
the configured loss at the configured batch size and saves the model once; the per-text, per-token and per-step
costs are cached per (model, machine, batch shape) in `cache_dir/estimate_probe.json`.
"""

from __future__ import annotations

import hashlib
import random
import tempfile
import time
from pathlib import Path
from typing import Any

from core.config.schema import EmbedConfig
from core.models.encoding import inference_model, machine_id, training_precision
from core.models.load import load_model, resolve_model, set_attention_dropout
from core.runs.folders import read_json, write_json
from core.training.losses import build_loss
from core.training.mining import model_cache_dir

PROBE_FILE = "estimate_probe.json"
PROBE_STEPS = 3  # measured training steps (after one small warm-up step)...
PROBE_MAX_S = 10.0  # ...or fewer once they took this long: a slow machine needs no more steps to be measured
PROBE_TEXTS = 256  # texts encoded to measure the encode rate
SAMPLE_TEXTS = 2000  # token counts of bigger sets are measured on a sample and scaled


def mined(cfg: EmbedConfig, fmt: str) -> bool:
    mcfg = cfg.mining
    return fmt != "scored" and mcfg.enabled and mcfg.num_negatives > 0 and (fmt == "pairs" or mcfg.augment_triplets)


def _negatives(cfg: EmbedConfig, fmt: str) -> int:
    """Negatives per training pair (its own and mined), as prepare.py's training table holds them."""
    return 0 if fmt == "scored" else (fmt == "triplets") + (cfg.mining.num_negatives if mined(cfg, fmt) else 0)


def trained_pairs(cfg: EmbedConfig, fmt: str, pairs: int) -> int:
    """Pairs the training table keeps: `mining.skip_easiest` leaves out a share of the mined pairs."""
    return pairs - int(pairs * cfg.mining.skip_easiest) if fmt == "pairs" and mined(cfg, fmt) else pairs


def rows_per_pair(cfg: EmbedConfig, fmt: str) -> int:
    """Training rows per pair: one per negative in the triplet output format, else one."""
    n = _negatives(cfg, fmt)
    return n if n > 1 and cfg.mining.output_format == "triplet" else 1


def _columns(cfg: EmbedConfig, fmt: str) -> int:
    n = _negatives(cfg, fmt)
    return 2 + (1 if rows_per_pair(cfg, fmt) > 1 else n)


def _chunked(cfg: EmbedConfig, device: str) -> bool:
    """Whether training embeds length-sorted chunks (losses.build_loss on a CPU): then padding costs nothing."""
    return (
        device == "cpu"
        and not cfg.matryoshka_dims
        and not cfg.mini_batch_size
        and cfg.loss in ("auto", "mnrl", "symmetric_mnrl", "cosent")
    )


def _probe_key(cfg: EmbedConfig, fmt: str) -> str:

    model = Path(model_cache_dir("", resolve_model(cfg.model_name))).name  # path + modification time
    parts = [
        model,
        machine_id(),
        cfg.batch_size,
        _columns(cfg, fmt),
        fmt == "scored",
        cfg.loss,
        cfg.mini_batch_size,
        cfg.precision,
        cfg.encode_precision,
        cfg.gradient_checkpointing,
        cfg.attention_dropout,
        bool(cfg.matryoshka_dims),
        cfg.mining.batch_size,
    ]
    return hashlib.sha256(repr(parts).encode()).hexdigest()[:20]


def lengths_of(tokenizer, texts: list[str], max_len: int) -> list[int]:
    """Token counts (truncated as the model truncates) of `texts`; a sample of big sets, repeated to full size."""
    if not texts:
        return []
    sample = texts if len(texts) <= SAMPLE_TEXTS else random.Random(0).sample(texts, SAMPLE_TEXTS)
    ids = tokenizer(list(sample), truncation=True, max_length=max_len, add_special_tokens=True)["input_ids"]
    lengths = [len(i) for i in ids]
    return lengths if len(texts) == len(sample) else [lengths[i % len(lengths)] for i in range(len(texts))]


def _device_sync() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.synchronize()


def run_probe(
    cfg: EmbedConfig, fmt: str, rows: list[list[str]], texts: list[str], scores: list[float] | None = None
) -> dict[str, Any]:
    """Measure on this machine: model load, encode rate, training step rate, save time. `rows` are real training
    rows (one text per column), `texts` real texts to encode."""
    import torch

    t0 = time.perf_counter()
    model = load_model(cfg.model_name, max_seq_length=cfg.max_seq_length)
    load_s = time.perf_counter() - t0
    tok = model.tokenizer
    encoder = inference_model(model, cfg.encode_precision)  # what mining and the evaluations will encode with
    per_text, per_token = _encode_rates(encoder, tok, texts[:PROBE_TEXTS], cfg)
    train_s, train_tokens = probe_steps(cfg, fmt, model, rows, scores)
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        model.save(tmp)
        save_s = time.perf_counter() - t0
    base_model = getattr(model.model_card_data, "base_model", None) or ""
    device = str(model.device)
    del model
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    return {
        "load_s": load_s,
        "encode_s_per_text": per_text,
        "encode_s_per_token": per_token,
        "train_s_per_token": train_s / max(1.0, train_tokens),
        "save_s": save_s,
        "device": device,
        "base_model": base_model,
        "machine": machine_id(),
        "measured_at": time.time(),
    }


def _encode_rates(encoder, tok, texts: list[str], cfg: EmbedConfig) -> tuple[float, float]:
    """(seconds per text, seconds per token) of encoding: the shorter and the longer half of `texts` are timed
    apart, so that short queries (per-batch overhead) and long documents (attention) are both priced right."""
    counts = lengths_of(tok, texts, cfg.max_seq_length)  # tokenised once: sorts the halves and counts their tokens
    order = sorted(range(len(texts)), key=counts.__getitem__)
    halves = [order[: len(texts) // 2], order[len(texts) // 2 :]]
    encoder.encode(texts[:8], batch_size=cfg.mining.batch_size)  # warm-up: first calls allocate
    measured = []
    for half in halves:
        _device_sync()
        t0 = time.perf_counter()
        encoder.encode([texts[i] for i in half], batch_size=cfg.mining.batch_size)
        _device_sync()
        measured.append((time.perf_counter() - t0, len(half), sum(counts[i] for i in half)))
    (t_s, n_s, k_s), (t_l, n_l, k_l) = measured
    total_s, tokens = t_s + t_l, max(1, k_s + k_l)
    # t = a * texts + b * tokens through both halves; texts of one length (or noise) fall back to tokens only.
    det = n_s * k_l - n_l * k_s
    if det > 0:
        a, b = (t_s * k_l - t_l * k_s) / det, (n_s * t_l - n_l * t_s) / det
        if a >= 0 and b > 0:
            return a, b
    return 0.0, total_s / tokens


def probe_steps(
    cfg: EmbedConfig,
    fmt: str,
    model,
    rows: list[list[str]],
    scores: list[float] | None,
    bf16: bool | None = None,
    max_s: float = PROBE_MAX_S,
) -> tuple[float, float]:
    """(seconds, batch tokens) of PROBE_STEPS real optimizer steps of the configured loss (after a warm-up step),
    under bf16 autocast when `bf16` (None: as the run's precision would train)."""
    import torch

    loss_fn = build_loss(cfg, fmt, model)
    if cfg.gradient_checkpointing:
        model[0].auto_model.gradient_checkpointing_enable()
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.learning_rate)
    set_attention_dropout(model, cfg.attention_dropout)
    bf16 = "bf16" in training_precision(cfg, model) if bf16 is None else bf16
    amp = torch.autocast(model.device.type, dtype=torch.bfloat16) if bf16 else None
    chunked = _chunked(cfg, str(model.device))
    rng = random.Random(cfg.seed)
    model.train()
    seconds, tokens, step = 0.0, 0.0, 0
    # A small warm-up step pays for first-call allocations; then full batches until PROBE_STEPS or PROBE_MAX_S.
    while step <= PROBE_STEPS and (step < 2 or seconds < max_s):
        size = min(4, cfg.batch_size) if step == 0 else cfg.batch_size
        idx = [rng.randrange(len(rows)) for _ in range(min(size, len(rows)))]
        columns = [[rows[i][c] for i in idx] for c in range(len(rows[0]))]
        _device_sync()
        t0 = time.perf_counter()  # the trainer's collator tokenises every batch: part of a step's time
        features = [_to(model, col) for col in columns]
        labels = torch.tensor([scores[i] for i in idx], device=model.device) if scores else None
        if amp is not None:
            with amp:
                value = loss_fn(features, labels)
        else:
            value = loss_fn(features, labels)
        value.backward()
        optimizer.step()
        optimizer.zero_grad()
        _device_sync()
        if step:
            seconds += time.perf_counter() - t0
            lengths = [f["attention_mask"].sum(dim=1).tolist() for f in features]
            tokens += sum(sum(ls) if chunked else len(ls) * max(ls) for ls in lengths)
        step += 1
    model.eval()
    return seconds, tokens


def _to(model, texts: list[str]) -> dict[str, Any]:
    """Tokenised features on the model's device, as the trainer's collator makes them."""
    prepare = getattr(model, "preprocess", None) or model.tokenize
    return {k: v.to(model.device) if hasattr(v, "to") else v for k, v in prepare(texts).items()}


def cached_probe(cfg: EmbedConfig, fmt: str) -> dict[str, Any] | None:

    return (read_json(Path(cfg.cache_dir) / PROBE_FILE, {}) or {}).get(_probe_key(cfg, fmt))


def store_probe(cfg: EmbedConfig, fmt: str, probe: dict[str, Any]) -> None:

    path = Path(cfg.cache_dir) / PROBE_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    data = read_json(path, {}) or {}
    data[_probe_key(cfg, fmt)] = probe
    write_json(path, data)

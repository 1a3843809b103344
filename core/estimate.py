"""How long a training will take on this machine, before it starts: seconds per phase from a measured probe.

The probe loads the model, encodes real texts of the dataset and runs a few real forward/backward/optimizer steps
of the configured loss at the configured batch size, then saves the model once. It yields per-token costs, cached
per (model, machine, batch shape) in `cache_dir/estimate_probe.json`, so the next estimate for any dataset is free.
The phases then follow from this dataset's token counts and the run's plan (steps, evaluations, checkpoints), the
same plan `training.py` follows:

  loading   load the model, validate and split the data
  mining    encode the training queries and the candidate documents with the mining model (skipped when cached)
  baseline  evaluate the base model on the test split (the corpus is reused from mining when the models match)
  training  the steps, plus the evaluations and checkpoints during training
  final_evaluation  the full evaluation of the trained model, unless an evaluation during training measured it
  saving    the model saved into the run folder and copied to output_dir
"""

from __future__ import annotations

import hashlib
import math
import random
import tempfile
import time
from pathlib import Path
from typing import Any

from .config import EmbedConfig
from .data import positive_column
from .encoding import inference_model, machine_id

PROBE_FILE = "estimate_probe.json"
PROBE_STEPS = 3  # measured training steps (after one small warm-up step)...
PROBE_MAX_S = 10.0  # ...or fewer once they took this long: a slow machine needs no more steps to be measured
PROBE_TEXTS = 256  # texts encoded to measure the encode rate
SAMPLE_TEXTS = 2000  # token counts of bigger sets are measured on a sample and scaled
PHASES = ["loading", "mining", "baseline", "training", "final_evaluation", "saving"]


def _columns(cfg: EmbedConfig, fmt: str) -> int:
    mcfg = cfg.mining
    mined = fmt != "scored" and mcfg.enabled and mcfg.num_negatives > 0 and (fmt == "pairs" or mcfg.augment_triplets)
    if fmt == "scored":
        return 2
    return 2 + (fmt == "triplets") + (mcfg.num_negatives if mined else 0)


def _chunked(cfg: EmbedConfig, device: str) -> bool:
    """Whether training embeds length-sorted chunks (losses.build_loss on a CPU): then padding costs nothing."""
    return (
        device == "cpu"
        and not cfg.matryoshka_dims
        and not cfg.mini_batch_size
        and cfg.loss in ("auto", "mnrl", "cosent")
    )


def _probe_key(cfg: EmbedConfig, fmt: str) -> str:
    from .mining import model_cache_dir
    from .models import resolve_model

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
        bool(cfg.matryoshka_dims),
        cfg.mining.batch_size,
    ]
    return hashlib.sha256(repr(parts).encode()).hexdigest()[:20]


def _lengths(tokenizer, texts: list[str], max_len: int) -> list[int]:
    """Token counts (truncated as the model truncates) of `texts`; a sample of big sets, repeated to full size."""
    if not texts:
        return []
    sample = texts if len(texts) <= SAMPLE_TEXTS else random.Random(0).sample(texts, SAMPLE_TEXTS)
    ids = tokenizer(list(sample), truncation=True, max_length=max_len, add_special_tokens=True)["input_ids"]
    lengths = [len(i) for i in ids]
    return lengths if len(texts) == len(sample) else [lengths[i % len(lengths)] for i in range(len(texts))]


def _batch_tokens(columns: list[list[int]], batch: int, chunked: bool, seed: int = 0, trials: int = 50) -> float:
    """Mean tokens one training batch computes over: the sum of the lengths when embedded by length, else every
    text padded to the longest of its column in the batch."""
    rng = random.Random(seed)
    total = 0.0
    for _ in range(trials):
        for col in columns:
            pick = [col[rng.randrange(len(col))] for _ in range(min(batch, len(col)))] if col else []
            total += sum(pick) if chunked else len(pick) * max(pick, default=0)
    return total / trials


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

    from .models import load_model

    t0 = time.perf_counter()
    model = load_model(cfg.model_name, max_seq_length=cfg.max_seq_length)
    load_s = time.perf_counter() - t0
    tok = model.tokenizer
    encoder = inference_model(model, cfg.encode_precision)  # what mining and the evaluations will encode with
    per_text, per_token = _encode_rates(encoder, tok, texts[:PROBE_TEXTS], cfg)
    train_s, train_tokens = _probe_steps(cfg, fmt, model, rows, scores)
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
    by_length = sorted(texts, key=lambda t: len(tok.tokenize(t)))
    halves = [by_length[: len(texts) // 2], by_length[len(texts) // 2 :]]
    encoder.encode(texts[:8], batch_size=cfg.mining.batch_size)  # warm-up: first calls allocate
    measured = []
    for half in halves:
        _device_sync()
        t0 = time.perf_counter()
        encoder.encode(half, batch_size=cfg.mining.batch_size)
        _device_sync()
        measured.append((time.perf_counter() - t0, len(half), sum(_lengths(tok, half, cfg.max_seq_length))))
    (t_s, n_s, k_s), (t_l, n_l, k_l) = measured
    total_s, tokens = t_s + t_l, max(1, k_s + k_l)
    # t = a * texts + b * tokens through both halves; texts of one length (or noise) fall back to tokens only.
    det = n_s * k_l - n_l * k_s
    if det > 0:
        a, b = (t_s * k_l - t_l * k_s) / det, (n_s * t_l - n_l * t_s) / det
        if a >= 0 and b > 0:
            return a, b
    return 0.0, total_s / tokens


def _probe_steps(
    cfg: EmbedConfig, fmt: str, model, rows: list[list[str]], scores: list[float] | None
) -> tuple[float, float]:
    """(seconds, batch tokens) of PROBE_STEPS real optimizer steps of the configured loss (after a warm-up step)."""
    import torch

    from .losses import build_loss

    loss_fn = build_loss(cfg, fmt, model)
    if cfg.gradient_checkpointing:
        model[0].auto_model.gradient_checkpointing_enable()
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.learning_rate)
    amp = torch.autocast("cuda", dtype=torch.bfloat16) if "bf16" in _precision(cfg) else None
    chunked = _chunked(cfg, str(model.device))
    rng = random.Random(cfg.seed)
    model.train()
    seconds, tokens, step = 0.0, 0.0, 0
    # A small warm-up step pays for first-call allocations; then full batches until PROBE_STEPS or PROBE_MAX_S.
    while step <= PROBE_STEPS and (step < 2 or seconds < PROBE_MAX_S):
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


def _precision(cfg: EmbedConfig) -> dict[str, bool]:
    from .training import _precision as precision

    return precision(cfg)


def cached_probe(cfg: EmbedConfig, fmt: str) -> dict[str, Any] | None:
    from .runs import read_json

    return (read_json(Path(cfg.cache_dir) / PROBE_FILE, {}) or {}).get(_probe_key(cfg, fmt))


def _store_probe(cfg: EmbedConfig, fmt: str, probe: dict[str, Any]) -> None:
    from .runs import read_json, write_json

    path = Path(cfg.cache_dir) / PROBE_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    data = read_json(path, {}) or {}
    data[_probe_key(cfg, fmt)] = probe
    write_json(path, data)


def _mining_cached(cfg: EmbedConfig, base_model: str, queries: list[str], corpus: list[str]) -> tuple[bool, bool]:
    """Whether mine_hard_negatives will find these query / corpus embeddings in its cache (the library's naming,
    sentence_transformers/util/hard_negatives.py; when that changes the estimate just counts the encode)."""
    from .mining import model_cache_dir
    from .models import resolve_model

    folder = Path(model_cache_dir(cfg.cache_dir, resolve_model(cfg.mining_model_name or cfg.model_name)))

    def hit(kind: str, texts: list[str]) -> bool:
        digest = hashlib.sha256(repr((base_model, None, None, texts)).encode(), usedforsecurity=False).hexdigest()
        return (folder / f"{kind}_embeddings_{digest}.npy").exists()

    return hit("query", queries), hit("corpus", corpus)


def _probe_rows(prep, cfg: EmbedConfig, columns: int) -> tuple[list[list[str]], list[float] | None]:
    """Real training rows of the table's shape; mined negatives are not known yet, so documents stand in."""
    rng = random.Random(cfg.seed)
    train = prep.train.head(max(64, cfg.batch_size * (PROBE_STEPS + 1)))
    if prep.fmt == "scored":
        return [[a, b] for a, b in zip(train["doc1"], train["doc2"])], [float(s) for s in train["similarity"]]
    pos = positive_column(prep.fmt)
    base = [
        [q, p] + ([n] if prep.fmt == "triplets" else [])
        for q, p, n in zip(train["query"], train[pos], train["negative"] if prep.fmt == "triplets" else train[pos])
    ]
    docs = prep.corpus or list(train[pos])
    return [row + [rng.choice(docs) for _ in range(columns - len(row))] for row in base], None


def _eval_lengths(prep, lengths, bounded_to: int | None) -> list[int]:
    """Token counts of what one evaluation encodes: the test queries and the (bounded) corpus, or both sides."""
    test = prep.test
    if test.empty:
        return []
    if prep.fmt == "scored":
        return lengths(list(test["doc1"]) + list(test["doc2"]))
    pos = positive_column(prep.fmt)
    corpus = list(dict.fromkeys(list(prep.corpus) + list(test[pos])))
    if bounded_to and len(corpus) > bounded_to:
        corpus = random.Random(0).sample(corpus, bounded_to)
    out = lengths(list(dict.fromkeys(test["query"]))) + lengths(corpus)
    if prep.fmt == "triplets":
        out += lengths(list(test["query"]) + list(test["positive"]) + list(test["negative"]))
    return out


def estimate_for(cfg: EmbedConfig, prep, split_s: float = 0.0, cached_only: bool = False) -> dict[str, Any] | None:
    """Seconds per phase for this prepared data (`prepare.split_data`) and config, on this machine. With
    `cached_only`, None unless the probe for this model, machine and batch shape is cached."""
    from .advice import small_split_warning
    from .eval_schedule import EVALS_PER_RUN, every
    from .models import load_tokenizer

    fmt, columns = prep.fmt, _columns(cfg, prep.fmt)
    t0 = time.perf_counter()
    probe, cached = cached_probe(cfg, fmt), True
    if probe is None and cached_only:
        return None
    if probe is None:
        rows, scores = _probe_rows(prep, cfg, columns)
        texts = [t for row in rows for t in row]
        probe, cached = (
            run_probe(cfg, fmt, rows, random.Random(cfg.seed).sample(texts, min(len(texts), PROBE_TEXTS)), scores),
            False,
        )
        _store_probe(cfg, fmt, probe)
    probe_s = time.perf_counter() - t0
    tok = load_tokenizer(cfg.model_name)

    def lengths(texts: list[str]) -> list[int]:
        return _lengths(tok, list(texts), cfg.max_seq_length)

    phases = dict.fromkeys(PHASES, 0.0)
    full_eval = _eval_lengths(prep, lengths, None)
    phases.update(_encode_phases(cfg, prep, probe, lengths, columns, full_eval), loading=probe["load_s"] + split_s)
    plan = _training_plan(cfg, prep, columns, lengths, str(probe.get("device", "cpu")))
    step_s = probe["train_s_per_token"] * plan["tokens_per_step"]
    eval_s = encode_cost(probe, _eval_lengths(prep, lengths, cfg.evaluation.max_corpus_size))
    save_every = plan["eval_steps"] or every(plan["steps"], EVALS_PER_RUN)
    plan["checkpoints"] = plan["steps"] // save_every
    # One step more: the trainer's set-up and its first step's allocations cost about one step.
    phases["training"] = (
        (plan["steps"] + 1) * step_s + plan["evaluations"] * eval_s + plan["checkpoints"] * 3 * probe["save_s"]
    )  # a checkpoint holds the optimizer too
    bounded = bool(cfg.evaluation.max_corpus_size) and len(prep.corpus) > cfg.evaluation.max_corpus_size
    known = plan["evaluations"] > 0 and not bounded and cfg.evaluation.save_best_model
    phases["final_evaluation"] = 0.0 if known else encode_cost(probe, full_eval)
    phases["saving"] = 2 * probe["save_s"]  # saved into the run folder, then copied to output_dir
    phases = {k: round(v, 1) for k, v in phases.items()}
    plan.update(
        step_s=round(step_s, 3),
        evaluation_s=round(eval_s, 2),
        test_queries=_test_queries(prep),
        corpus_size=len(prep.corpus),
        train_rows=len(prep.train),
        columns=columns,
    )
    warning = small_split_warning(plan["test_queries"], len(prep.train) + len(prep.test), cfg.test_size)
    return {
        "phases": phases,
        "total_s": round(sum(phases.values()), 1),
        "plan": plan,
        "warnings": [warning] if warning and not prep.test.empty else [],
        "probe": {
            "cached": cached,
            "seconds": round(probe_s, 1),
            "device": probe.get("device"),
            "machine": probe.get("machine"),
            "measured_at": probe.get("measured_at"),
        },
    }


def encode_cost(probe: dict[str, Any], lengths: list[int]) -> float:
    """Seconds to encode texts of these token counts (probes cached before per-text costs count tokens only)."""
    return probe.get("encode_s_per_text", 0.0) * len(lengths) + probe["encode_s_per_token"] * sum(lengths)


def _encode_phases(
    cfg: EmbedConfig, prep, probe: dict[str, Any], lengths, columns: int, full_eval: list[int]
) -> dict[str, float]:
    """Mining (skipped for embeddings in the mining cache) and the baseline evaluation, from the encode rate."""
    from .models import resolve_model

    fmt, out = prep.fmt, {"mining": 0.0}
    other_miner = resolve_model(cfg.mining_model_name or cfg.model_name) != resolve_model(cfg.model_name)
    mined = columns > 2 + (fmt == "triplets")
    if mined:
        pos = positive_column(fmt)
        positives = list(prep.train[pos])
        queries = list(dict.fromkeys(prep.train["query"]))
        corpus = list(dict.fromkeys([t for t in dict.fromkeys(prep.corpus) if t not in set(positives)] + positives))
        hit_q, hit_c = _mining_cached(cfg, probe.get("base_model", ""), queries, corpus)
        out["mining"] = encode_cost(probe, lengths(queries) * (not hit_q) + lengths(corpus) * (not hit_c))
        out["mining"] += probe["load_s"] if other_miner else 0.0
    if mined and not other_miner and fmt != "scored":  # the baseline reuses the mining corpus embeddings
        out["baseline"] = encode_cost(probe, lengths(list(dict.fromkeys(prep.test["query"]))))
    else:
        out["baseline"] = encode_cost(probe, full_eval)
    return out


def _test_queries(prep) -> int:
    if prep.test.empty:
        return 0
    return len(prep.test) if prep.fmt == "scored" else prep.test["query"].nunique()


def _training_plan(cfg: EmbedConfig, prep, columns: int, lengths, device: str) -> dict[str, Any]:
    """Steps, evaluations during training and the mean tokens of one batch, as training.py will see them."""
    from .eval_schedule import eval_steps as schedule_eval_steps

    rows = len(prep.train)
    steps_per_epoch = max(1, rows // cfg.batch_size)  # what training.py plans its evaluations with...
    steps = max(
        1, math.ceil(math.ceil(rows / cfg.batch_size) * cfg.num_epochs)
    )  # ...the trainer runs a last partial batch
    bounded = _eval_lengths(prep, lambda texts: [0] * len(texts), cfg.evaluation.max_corpus_size)
    eval_steps = schedule_eval_steps(cfg, steps_per_epoch, columns, len(bounded)) if not prep.test.empty else None
    if prep.fmt == "scored":
        cols = [lengths(prep.train["doc1"]), lengths(prep.train["doc2"])]
    else:
        pos = positive_column(prep.fmt)
        cols = [lengths(prep.train["query"]), lengths(prep.train[pos])]
        if prep.fmt == "triplets":
            cols.append(lengths(prep.train["negative"]))
        docs = lengths(prep.corpus) or cols[1]
        cols += [docs] * (columns - len(cols))
    chunked = _chunked(cfg, device)
    return {
        "steps": steps,
        "eval_steps": eval_steps,
        "evaluations": steps // eval_steps if eval_steps else 0,
        "tokens_per_step": round(_batch_tokens(cols, cfg.batch_size, chunked, cfg.seed), 1),
    }


def estimate(cfg: EmbedConfig) -> dict[str, Any]:
    """Resolve, validate and split the config's data, then `estimate_for` it. Raises as training would."""
    from .models import load_tokenizer
    from .prepare import split_data

    t0 = time.perf_counter()
    prep = split_data(cfg, load_tokenizer(cfg.model_name))
    return estimate_for(cfg, prep, split_s=time.perf_counter() - t0)


def fmt_s(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    seconds = int(round(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}h{m:02d}m" if h else f"{m}m{s:02d}s" if m else f"{s}s"


def actual_phases(timing: dict[str, float]) -> dict[str, float]:
    """A finished run's metrics.json timing in the estimate's phases (its mining_s includes loading)."""
    return {
        "loading+mining": timing.get("mining_s", 0.0),
        "baseline": timing.get("baseline_eval_s", 0.0),
        "training": timing.get("train_s", 0.0),
        "final_evaluation": timing.get("final_eval_s", 0.0),
    }


def estimate_error(est: dict[str, Any], timing: dict[str, float]) -> dict[str, Any]:
    """(estimate - measured) / measured for the total and each phase a run's timing reports."""
    p = est["phases"]
    guess = {
        "loading+mining": p["loading"] + p["mining"],
        "baseline": p["baseline"],
        "training": p["training"],
        "final_evaluation": p["final_evaluation"],
    }
    real = actual_phases(timing)
    total_guess, total_real = sum(guess.values()), sum(real.values())
    out = {k: round((guess[k] - real[k]) / real[k], 3) if real[k] >= 1 else None for k in guess}
    out["total"] = round((total_guess - total_real) / total_real, 3) if total_real else None
    return {"estimate_s": round(total_guess, 1), "measured_s": round(total_real, 1), "relative_error": out}


def estimate_markdown(est: dict[str, Any], actual: dict[str, float] | None = None) -> str:
    """A table of the phases (and, during or after a run, the actual seconds beside them)."""
    head = "| phase | estimate |" + (" actual |" if actual is not None else "")
    lines = [head, "|---|---:|" + ("---:|" if actual is not None else "")]
    for name, sec in est["phases"].items():
        row = f"| {name.replace('_', ' ')} | {fmt_s(sec)} |"
        if actual is not None:
            row += f" {fmt_s(actual[name]) if name in actual else '–'} |"
        lines.append(row)
    lines.append(
        f"| **total** | **{fmt_s(est['total_s'])}** |"
        + (f" **{fmt_s(sum(actual.values()))}** |" if actual is not None else "")
    )
    plan, probe = est["plan"], est["probe"]
    how = "cached probe" if probe["cached"] else f"probe {probe['seconds']} s"
    note = (
        f"{plan['steps']} steps of {plan['step_s']:.2f} s, {plan['evaluations']} evaluations during training, "
        f"{plan['train_rows']} training rows, {plan['test_queries']} test queries, {plan['corpus_size']} documents "
        f"· measured on {probe.get('device')} ({how})"
    )
    return "\n".join(lines) + "\n\n" + note + "".join(f"\n\n⚠️ {w}" for w in est.get("warnings", []))

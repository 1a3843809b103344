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
import logging
import math
import random
import threading
import time
from pathlib import Path
from typing import Any

from core.config.schema import EmbedConfig
from core.data.validate import positive_column
from core.evaluation.advice import small_split_warning
from core.evaluation.schedule import EVALS_PER_RUN, every, loads_best
from core.evaluation.schedule import eval_steps as schedule_eval_steps
from core.models.load import load_tokenizer, resolve_miner, resolve_model
from core.runs.events import EventWriter
from core.runs.progress import PhaseTracker, format_eta
from core.training.mining import model_cache_dir
from core.training.prepare import split_data
from core.training.probe import (  # noqa: F401 (cached_probe is part of this module's API)
    PROBE_STEPS,
    PROBE_TEXTS,
    _chunked,
    _columns,
    cached_probe,
    lengths_of,
    mined,
    rows_per_pair,
    run_probe,
    store_probe,
    trained_pairs,
)

PHASES = ["loading", "mining", "baseline", "training", "final_evaluation", "saving"]

log = logging.getLogger("core")


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


def _mining_cached(cfg: EmbedConfig, base_model: str, queries: list[str], corpus: list[str]) -> tuple[bool, bool]:
    """Whether mine_hard_negatives will find these query / corpus embeddings in its cache (the library's naming,
    sentence_transformers/util/hard_negatives.py; when that changes the estimate just counts the encode)."""

    folder = Path(
        model_cache_dir(cfg.cache_dir, resolve_miner(cfg.mining_model_name, cfg.model_name), cfg.max_seq_length)
    )

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


_PROBE_LOCK = threading.Lock()


def _measure(cfg: EmbedConfig, prep, columns: int) -> dict[str, Any]:
    """Run the probe on real rows and texts of this data, and cache it."""
    rows, scores = _probe_rows(prep, cfg, columns)
    texts = [t for row in rows for t in row]
    probe = run_probe(cfg, prep.fmt, rows, random.Random(cfg.seed).sample(texts, min(len(texts), PROBE_TEXTS)), scores)
    store_probe(cfg, prep.fmt, probe)
    return probe


def estimate_for(cfg: EmbedConfig, prep, split_s: float = 0.0, cached_only: bool = False) -> dict[str, Any] | None:
    """Seconds per phase for this prepared data (`prepare.split_data`) and config, on this machine. With
    `cached_only`, None unless the probe for this model, machine and batch shape is cached."""

    fmt, columns = prep.fmt, _columns(cfg, prep.fmt)
    t0 = time.perf_counter()
    probe, cached = cached_probe(cfg, fmt), True
    if probe is None and cached_only:
        return None
    if probe is None:
        with _PROBE_LOCK:  # one probe at a time: two would skew each other's timings and add up their memory
            probe = cached_probe(cfg, fmt)  # measured while this one waited?
            if probe is None:
                probe, cached = _measure(cfg, prep, columns), False
    probe_s = time.perf_counter() - t0
    tok = load_tokenizer(cfg.model_name)

    def lengths(texts: list[str]) -> list[int]:
        return lengths_of(tok, list(texts), cfg.max_seq_length)

    phases = dict.fromkeys(PHASES, 0.0)
    full_eval = _eval_lengths(prep, lengths, None)
    phases.update(_encode_phases(cfg, prep, probe, lengths, columns, full_eval), loading=probe["load_s"] + split_s)
    plan = _training_plan(cfg, prep, columns, lengths, str(probe.get("device", "cpu")))
    step_s = probe["train_s_per_token"] * plan["tokens_per_step"]
    eval_s = encode_cost(probe, _eval_lengths(prep, lengths, cfg.evaluation.max_corpus_size))
    save_every = plan["eval_steps"] or every(plan["steps"], EVALS_PER_RUN)
    plan["checkpoints"] = plan["steps"] // save_every
    # Batches cost by their rows: a last partial batch of a few rows costs a few rows (on a 3-step run, charging it
    # as a full step and one more for set-up doubled the estimate; make bench, memory preset).
    train_rows = trained_pairs(cfg, fmt, len(prep.train)) * rows_per_pair(cfg, fmt)  # a row per mined negative
    full_batches = train_rows * cfg.num_epochs / cfg.batch_size
    phases["training"] = (
        full_batches * step_s + plan["evaluations"] * eval_s + plan["checkpoints"] * 3 * probe["save_s"]
    )  # a checkpoint holds the optimizer too
    bounded = bool(cfg.evaluation.max_corpus_size) and len(prep.corpus) > cfg.evaluation.max_corpus_size
    known = plan["evaluations"] > 0 and not bounded and loads_best(cfg)
    phases["final_evaluation"] = 0.0 if known else encode_cost(probe, full_eval)
    phases["saving"] = 2 * probe["save_s"]  # saved into the run folder, then copied to output_dir
    phases = {k: round(v, 1) for k, v in phases.items()}
    plan.update(
        step_s=round(step_s, 3),
        evaluation_s=round(eval_s, 2),
        test_queries=_test_queries(prep),
        corpus_size=len(prep.corpus),
        train_rows=train_rows,
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

    fmt, out = prep.fmt, {"mining": 0.0}
    other_miner = resolve_miner(cfg.mining_model_name, cfg.model_name) != resolve_model(cfg.model_name)
    is_mined = mined(cfg, fmt)
    if is_mined:
        pos = positive_column(fmt)
        positives = list(prep.train[pos])
        queries = list(dict.fromkeys(prep.train["query"]))
        corpus = list(dict.fromkeys([t for t in dict.fromkeys(prep.corpus) if t not in set(positives)] + positives))
        hit_q, hit_c = _mining_cached(cfg, probe.get("base_model", ""), queries, corpus)
        out["mining"] = encode_cost(probe, lengths(queries) * (not hit_q) + lengths(corpus) * (not hit_c))
        out["mining"] += probe["load_s"] if other_miner else 0.0
    if is_mined and not other_miner and fmt != "scored":  # the baseline reuses the mining corpus embeddings
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

    rows = trained_pairs(cfg, prep.fmt, len(prep.train)) * rows_per_pair(cfg, prep.fmt)
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

    t0 = time.perf_counter()
    prep = split_data(cfg, load_tokenizer(cfg.model_name))
    return estimate_for(cfg, prep, split_s=time.perf_counter() - t0)


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
        row = f"| {name.replace('_', ' ')} | {format_eta(sec)} |"
        if actual is not None:
            row += f" {format_eta(actual[name]) if name in actual else '–'} |"
        lines.append(row)
    lines.append(
        f"| **total** | **{format_eta(est['total_s'])}** |"
        + (f" **{format_eta(sum(actual.values()))}** |" if actual is not None else "")
    )
    plan, probe = est["plan"], est["probe"]
    how = "cached probe" if probe["cached"] else f"probe {probe['seconds']} s"
    note = (
        f"{plan['steps']} steps of {plan['step_s']:.2f} s, {plan['evaluations']} evaluations during training, "
        f"{plan['train_rows']} training rows, {plan['test_queries']} test queries, {plan['corpus_size']} documents "
        f"· measured on {probe.get('device')} ({how})"
    )
    return "\n".join(lines) + "\n\n" + note + "".join(f"\n\n⚠️ {w}" for w in est.get("warnings", []))


def start_phases(cfg, prep, writer: EventWriter, t_start: float, resume_ckpt: str | None) -> PhaseTracker:
    """After loading: an `estimate` event when this machine's probe for the config is cached (a run never pays for
    a probe; the studio's Estimate button and `python -m core estimate` make one), then the loading phase's end."""
    estimate = None
    if resume_ckpt is None:
        try:
            estimate = estimate_for(cfg, prep, cached_only=True)
        except Exception as exc:  # an estimate is a nicety: it must never fail a run
            log.warning("no time estimate: %s", exc)
    if estimate:
        estimate["phases"]["loading"] = round(time.time() - t_start, 1)  # already done: the actual figure
        estimate["total_s"] = round(sum(estimate["phases"].values()), 1)
        writer.emit("estimate", **estimate)
    tracker = PhaseTracker(writer, estimate)
    tracker.started["loading"] = t_start
    tracker.end("loading")
    return tracker

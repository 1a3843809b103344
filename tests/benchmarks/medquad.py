"""Benchmark 1 — retrieval quality and time on MedQuAD (pairs).

Protocol (fixed before any tuning):
- train sample: `train_size` pairs drawn from medquad/train.jsonl with random.Random(SEED).sample;
- dev queries: every distinct dev query text (or a seeded sample of `dev_queries` of them);
- corpus: every dev document (or, with a dev-query sample, the documents of the sampled queries) plus
  `distractors` train documents drawn with random.Random(SEED + 1) from the distinct train documents — the same
  set whatever the train sample;
- relevant: every dev document paired with the same query text;
- one shared InformationRetrievalEvaluator (cosine, batch 64) evaluates every contender's saved model.
"""

from __future__ import annotations

import json
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .common import DATA_DIR, PY, bundled_model, core_train, read_jsonl, run_measured, tail, write_jsonl

SEED = 12345
METRICS = ["ndcg@10", "mrr@10", "recall@10", "accuracy@1"]


@dataclass
class Protocol:
    train: list[dict[str, str]]
    queries: dict[str, str]
    corpus: dict[str, str]
    relevant: dict[str, list[str]]
    distractors: list[str]


def build_protocol(train_size: int, dev_queries: int | None, distractors: int) -> Protocol:
    train = read_jsonl(DATA_DIR / "medquad" / "train.jsonl")
    dev = read_jsonl(DATA_DIR / "medquad" / "dev.jsonl")
    sample = [train[i] for i in sorted(random.Random(SEED).sample(range(len(train)), min(train_size, len(train))))]
    qtexts = list(dict.fromkeys(r["query"] for r in dev))
    if dev_queries and dev_queries < len(qtexts):
        qtexts = [qtexts[i] for i in sorted(random.Random(SEED).sample(range(len(qtexts)), dev_queries))]
        chosen = set(qtexts)
        dev_docs = list(dict.fromkeys(r["document"] for r in dev if r["query"] in chosen))
    else:
        dev_docs = list(dict.fromkeys(r["document"] for r in dev))
    dev_set = set(dev_docs)
    train_docs = [d for d in dict.fromkeys(r["document"] for r in train) if d not in dev_set]
    extra = [train_docs[i] for i in sorted(random.Random(SEED + 1).sample(range(len(train_docs)), distractors))]
    doc_id = {t: f"d{i}" for i, t in enumerate(dict.fromkeys(dev_docs + extra))}
    q_id = {q: f"q{i}" for i, q in enumerate(qtexts)}
    relevant: dict[str, set[str]] = {}
    for r in dev:
        if r["query"] in q_id and r["document"] in doc_id:
            relevant.setdefault(q_id[r["query"]], set()).add(doc_id[r["document"]])
    return Protocol(
        sample,
        {v: k for k, v in q_id.items()},
        {v: k for k, v in doc_id.items()},
        {k: sorted(v) for k, v in relevant.items()},
        extra,
    )


def default_recipe() -> str:
    from core.config.schema import EmbedConfig

    cfg = EmbedConfig()
    n = cfg.mining.num_negatives
    if n > 1 and cfg.mining.output_format == "triplet":
        shape = f"(query, positive, mined negative) rows, one per mined negative ({n} per query: each pair is trained {n} times)"
    else:
        shape = f"(query, positive, {n} mined negative{'s' * (n > 1)}) rows"
    rows = (
        f"{shape}, mined from every document of the data and corpus_path"
        if n
        else "(query, positive) rows with in-batch negatives"
    )
    margin = "no margin" if cfg.mining.margin is None else f"a {cfg.mining.margin_type} margin of {cfg.mining.margin}"
    return (
        f"{rows} with {margin}, a {cfg.lr_scheduler.replace('_', ' ')} learning rate of {cfg.learning_rate:g} "
        f"(warm-up ratio {cfg.warmup_ratio:g}, so {'no' if cfg.warmup_ratio == 0 else 'a'} warm-up), the "
        f"{'best evaluated' if cfg.evaluation.save_best_model else 'final'} weights kept"
        + (
            f" and merged with the base model's (WiSE-FT, {cfg.merge_with_base:g} of the change)"
            if cfg.merge_with_base
            else ""
        )
        + ", "
        "batches embedded in "
        f"length-sorted chunks on the CPU (core/training/losses.py), attention dropout {cfg.attention_dropout}, training "
        f"precision {cfg.precision} (bf16 autocast where core/models/encoding.py measured it faster on this machine), "
        f"{cfg.test_size:.0%} of the pairs held out for its own evaluation"
    )


def shared_evaluator(p: Protocol):
    from sentence_transformers.sentence_transformer.evaluation import InformationRetrievalEvaluator

    return InformationRetrievalEvaluator(
        p.queries,
        p.corpus,
        {k: set(v) for k, v in p.relevant.items()},
        accuracy_at_k=[1, 5, 10],
        precision_recall_at_k=[10],
        mrr_at_k=[10],
        ndcg_at_k=[10],
        map_at_k=[100],
        batch_size=64,
        name="dev",
        write_csv=False,
        score_functions=None,
        main_score_function="cosine",
    )


def evaluate_dir(evaluator, model_dir: str) -> tuple[dict[str, float], float]:
    """Load a saved model as a user would and evaluate it: metrics and seconds."""
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(model_dir, local_files_only=True)
    t0 = time.time()
    raw = evaluator(model)
    secs = time.time() - t0
    return {m: float(raw[f"dev_cosine_{m}"]) for m in METRICS}, secs


def run(
    work: Path, train_size: int, dev_queries: int | None, distractors: int, variants: dict[str, list[str]], log=print
) -> dict[str, Any]:
    """Build the protocol, run the contenders, evaluate each with the shared evaluator."""
    work.mkdir(parents=True, exist_ok=True)
    p = build_protocol(train_size, dev_queries, distractors)
    train_file = write_jsonl(work / "medquad_train_sample.jsonl", p.train)
    corpus_file = write_jsonl(work / "medquad_distractors.jsonl", [{"text": t} for t in p.distractors])
    protocol_file = work / "medquad_protocol.json"
    protocol_file.write_text(json.dumps({"queries": p.queries, "corpus": p.corpus, "relevant": p.relevant}))
    info = {
        "train_pairs": len(p.train),
        "dev_queries": len(p.queries),
        "corpus": len(p.corpus),
        "distractors": len(p.distractors),
        "relevant_pairs": sum(len(v) for v in p.relevant.values()),
    }
    log(f"medquad protocol: {info}")
    contenders: dict[str, dict[str, Any]] = {}

    # plain recipe
    log("medquad: plain recipe ...")
    res = run_measured(
        [
            PY,
            "-m",
            "tests.benchmarks.plain_recipe",
            "--train",
            str(train_file),
            "--protocol",
            str(protocol_file),
            "--output",
            str(work / "plain_model"),
            "--result",
            str(work / "plain_result.json"),
        ],
        work / "plain.log",
    )
    if res["rc"] != 0:
        raise RuntimeError(f"plain recipe failed:\n{tail(work / 'plain.log')}")
    r = json.loads((work / "plain_result.json").read_text())
    t = r["timing"]
    contenders["plain recipe"] = {
        "model_dir": str(work / "plain_model"),
        "wall_s": res["wall_s"],
        "peak_rss_mb": res["peak_rss_mb"],
        "mining_s": t["load_s"] + t["mining_s"],
        "train_s": t["train_s"],
        "eval_s": t["baseline_eval_s"] + t["final_eval_s"],
        "samples_per_s": t["train_samples_per_s"],
        "pure_samples_per_s": t["train_samples_per_s"],
        "rows": r["rows"],
        "cmd": "tests/benchmarks/plain_recipe.py",
        "cpu_s": res.get("cpu_s"),
        "time_file": str(work / "plain.time"),
    }
    log(f"  {contenders['plain recipe']}")

    # the project's pipeline (default config, plus variants)
    for name, extra in variants.items():
        log(f"medquad: {name} ...")
        run_dir = work / "runs" / name.replace(" ", "_")
        overrides = [
            f"dataset_path={train_file}",
            f"corpus_path={corpus_file}",
            "dataset_name=medquad_bench",
            f"output_dir={work / (name.replace(' ', '_') + '_model')}",
            f"runs_dir={work / 'runs'}",
            f"cache_dir={work / 'cache' / name.replace(' ', '_')}",
            *extra,
        ]
        res = core_train(overrides, run_dir, work / f"{name.replace(' ', '_')}.log")
        t = res["metrics"]["timing"]
        pure = t["train_s"] - res["step_eval_overhead_s"]
        contenders[name] = {
            "model_dir": str(run_dir / "model"),
            "wall_s": res["wall_s"],
            "peak_rss_mb": res["peak_rss_mb"],
            "mining_s": t["mining_s"],
            "train_s": round(pure, 1),
            "eval_s": t["baseline_eval_s"] + t["final_eval_s"] + res["step_eval_overhead_s"],
            "samples_per_s": t["train_samples_per_s"],
            "pure_samples_per_s": round(t["train_samples_per_s"] * t["train_s"] / max(pure, 1e-9), 2),
            "step_evals": res["step_evals"],
            "train_precision": res.get("train_precision"),
            "encode_precision": res.get("encode_precision"),
            "cpu_s": res.get("cpu_s"),
            "time_file": str(work / f"{name.replace(' ', '_')}.time"),
            "cmd": res["cmd"].replace(str(work), "$WORK"),
            "internal_before": res["metrics"]["before"],
            "internal_after": res["metrics"]["after"],
            "estimate": res.get("estimate"),
        }
        log(f"  {contenders[name]}")

    # one shared evaluator for all
    evaluator = shared_evaluator(p)
    out = {"protocol": info, "contenders": {}}
    for name, c in [("base", {"model_dir": bundled_model()}), *contenders.items()]:
        log(f"medquad: shared evaluation of {name} ...")
        metrics, secs = evaluate_dir(evaluator, c["model_dir"])
        c = dict(c, metrics=metrics, shared_eval_s=round(secs, 1))
        if name == "base":
            c.update(wall_s=round(secs, 1), mining_s=0.0, train_s=0.0, eval_s=round(secs, 1))
        out["contenders"][name] = c
        log(f"  {name}: {metrics} ({secs:.0f}s)")
    return out

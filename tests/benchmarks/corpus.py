"""Benchmark 1b — the corpus-sized protocol: training pairs plus a corpus of thousands of long documents.

A user improving RAG retrieval has a few hundred labelled pairs and a large document collection. Protocol (fixed
before any tuning):
- train: `train_size` MedQuAD train pairs drawn with random.Random(SEED);
- test: `test_queries` distinct dev queries drawn with random.Random(SEED + 1);
- corpus: their dev documents plus distinct train documents (seeded, the training positives among them, as in a
  corpus of every answer) up to `corpus_size` documents;
- the plain recipe (tests/benchmarks/plain_recipe.py: one hard negative mined from the training positives, MNRL,
  1 epoch, batch 32, lr 2e-5, linear decay) evaluates the base model before training and its model after, each on
  the whole corpus, inside its timed process: its before/after are the base and plain rows;
- the default pipeline is `python -m core train dataset_path=<train> corpus_path=<corpus>`, its saved model scored
  by the same InformationRetrievalEvaluator.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

from . import medquad
from .common import DATA_DIR, PY, core_train, read_jsonl, run_measured, tail, write_jsonl

SEED = 2024


def build_protocol(train_size: int, test_queries: int, corpus_size: int) -> medquad.Protocol:
    train = read_jsonl(DATA_DIR / "medquad" / "train.jsonl")
    dev = read_jsonl(DATA_DIR / "medquad" / "dev.jsonl")
    sample = [train[i] for i in sorted(random.Random(SEED).sample(range(len(train)), min(train_size, len(train))))]
    qtexts = list(dict.fromkeys(r["query"] for r in dev))
    qtexts = [qtexts[i] for i in sorted(random.Random(SEED + 1).sample(range(len(qtexts)), test_queries))]
    chosen = set(qtexts)
    dev_docs = list(dict.fromkeys(r["document"] for r in dev if r["query"] in chosen))
    positives = list(dict.fromkeys(r["document"] for r in sample))
    others = [d for d in dict.fromkeys(r["document"] for r in train) if d not in set(positives)]
    room = max(0, corpus_size - len(dev_docs) - len(positives))
    extra = positives + [others[i] for i in sorted(random.Random(SEED + 2).sample(range(len(others)), room))]
    doc_id = {t: f"d{i}" for i, t in enumerate(dict.fromkeys(dev_docs + extra))}
    q_id = {q: f"q{i}" for i, q in enumerate(qtexts)}
    relevant: dict[str, set[str]] = {}
    for r in dev:
        if r["query"] in q_id:
            relevant.setdefault(q_id[r["query"]], set()).add(doc_id[r["document"]])
    return medquad.Protocol(
        sample,
        {v: k for k, v in q_id.items()},
        {v: k for k, v in doc_id.items()},
        {k: sorted(v) for k, v in relevant.items()},
        extra,
    )


def _metrics(raw: dict[str, Any]) -> dict[str, float]:
    return {m: float(raw[f"dev_cosine_{m}"]) for m in medquad.METRICS}


def run(work: Path, train_size: int, test_queries: int, corpus_size: int, log=print) -> dict[str, Any]:
    work = work / "corpus"
    work.mkdir(parents=True, exist_ok=True)
    p = build_protocol(train_size, test_queries, corpus_size)
    train_file = write_jsonl(work / "train.jsonl", p.train)
    corpus_file = write_jsonl(work / "corpus.jsonl", [{"text": t} for t in p.corpus.values()])
    protocol_file = work / "protocol.json"
    protocol_file.write_text(json.dumps({"queries": p.queries, "corpus": p.corpus, "relevant": p.relevant}))
    info = {"train_pairs": len(p.train), "test_queries": len(p.queries), "corpus": len(p.corpus)}
    log(f"corpus protocol: {info}")

    log("corpus: plain recipe ...")
    cmd = [PY, "-m", "tests.benchmarks.plain_recipe", "--train", str(train_file), "--protocol", str(protocol_file)]
    cmd += ["--output", str(work / "plain_model"), "--result", str(work / "plain_result.json")]
    res = run_measured(cmd, work / "plain.log")
    if res["rc"] != 0:
        raise RuntimeError(f"plain recipe failed:\n{tail(work / 'plain.log')}")
    r = json.loads((work / "plain_result.json").read_text())
    t = r["timing"]
    plain = {
        "metrics": _metrics(r["after"]),
        "wall_s": res["wall_s"],
        "cpu_s": res.get("cpu_s"),
        "peak_rss_mb": res["peak_rss_mb"],
        "mining_s": t["load_s"] + t["mining_s"],
        "train_s": t["train_s"],
        "eval_s": t["baseline_eval_s"] + t["final_eval_s"],
    }
    base = {"metrics": _metrics(r["before"]), "eval_s": t["baseline_eval_s"]}
    log(f"  plain: {plain}")

    log("corpus: default ...")
    run_dir = work / "runs" / "default"
    overrides = [
        f"dataset_path={train_file}",
        f"corpus_path={corpus_file}",
        "dataset_name=corpus_bench",
        f"output_dir={work / 'default_model'}",
        f"runs_dir={work / 'runs'}",
        f"cache_dir={work / 'cache'}",
    ]
    res = core_train(overrides, run_dir, work / "default.log")
    t = res["metrics"]["timing"]
    log("corpus: shared evaluation of default ...")
    metrics, secs = medquad.evaluate_dir(medquad.shared_evaluator(p), str(run_dir / "model"))
    default = {
        "metrics": metrics,
        "wall_s": res["wall_s"],
        "cpu_s": res.get("cpu_s"),
        "peak_rss_mb": res["peak_rss_mb"],
        "mining_s": t["mining_s"],
        "train_s": t["train_s"] - res["step_eval_overhead_s"],
        "eval_s": t["baseline_eval_s"] + t["final_eval_s"] + res["step_eval_overhead_s"],
        "precision": res.get("encode_precision"),
        "cmd": res["cmd"].replace(str(work), "$WORK"),
        "estimate": res.get("estimate"),
        "shared_eval_s": round(secs, 1),
    }
    log(f"  default: {default}")
    return {"protocol": info, "contenders": {"base": base, "plain recipe": plain, "default": default}}


def gains(r: dict[str, Any]) -> tuple[float, float, float]:
    """(NDCG@10 gain ratio default/plain, wall-time ratio, peak-RSS ratio)."""
    c = r["contenders"]
    base = c["base"]["metrics"]["ndcg@10"]
    plain, default = c["plain recipe"], c["default"]
    gain = (default["metrics"]["ndcg@10"] - base) / max(1e-9, plain["metrics"]["ndcg@10"] - base)
    return gain, default["wall_s"] / plain["wall_s"], default["peak_rss_mb"] / plain["peak_rss_mb"]


def markdown(r: dict[str, Any]) -> list[str]:
    c, p = r["contenders"], r["protocol"]
    base = c["base"]["metrics"]["ndcg@10"]
    out = [
        "## 1c. Retrieval with a corpus — MedQuAD pairs + a corpus of long documents",
        "",
        f"Protocol: {p['train_pairs']} seeded MedQuAD train pairs; {p['test_queries']} seeded dev queries against "
        f"a corpus of {p['corpus']} MedQuAD answers (their dev answers plus train answers, the training positives "
        "among them). The plain recipe (one negative mined from the training positives, MNRL, 1 epoch, batch 32, "
        "lr 2e-5) times one evaluation before and one after on the whole corpus; the default is `python -m core "
        "train` with `corpus_path` = the corpus (mining over it, the baseline reusing the mining encode, a final "
        "evaluation on its own held-out split plus the corpus). Base and plain scores are the plain recipe's own "
        "evaluations; the default's saved model is scored by the same evaluator. Times in seconds; end-to-end = the "
        "whole process.",
        "",
        "| contender | NDCG@10 | MRR@10 | recall@10 | NDCG gain | mining s | training s | evaluation s | "
        "end-to-end s | process CPU s | peak RSS MB |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, x in c.items():
        m = x["metrics"]
        cells = [f"{x[k]:.0f}" if x.get(k) is not None else "—" for k in ("mining_s", "train_s", "eval_s", "wall_s")]
        cells += [f"{x['cpu_s']:.0f}" if x.get("cpu_s") else "—", str(x.get("peak_rss_mb", "—"))]
        out.append(
            f"| {name} | {m['ndcg@10']:.4f} | {m['mrr@10']:.4f} | {m['recall@10']:.4f} | "
            f"{m['ndcg@10'] - base:+.4f} | " + " | ".join(cells) + " |"
        )
    out += [
        "",
        f"Default command: `{c['default']['cmd']}`; the engine encoded corpora in "
        f"{c['default'].get('precision') or '?'} (core/models/encoding.py's measurement on this machine).",
        "",
    ]
    return out

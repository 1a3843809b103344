"""Benchmark 2 — scored pairs on the STS Benchmark: base vs the default pipeline, Spearman on stsb test."""

from __future__ import annotations

import random
import time
from pathlib import Path
from typing import Any

from .common import DATA_DIR, bundled_model, core_train, read_jsonl, write_jsonl

SEED = 12345


def spearman(model_dir: str) -> tuple[float, float]:
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.evaluation import EmbeddingSimilarityEvaluator

    test = read_jsonl(DATA_DIR / "stsb" / "test.jsonl")
    ev = EmbeddingSimilarityEvaluator(
        [r["doc1"] for r in test],
        [r["doc2"] for r in test],
        [r["similarity"] for r in test],
        batch_size=64,
        name="stsb_test",
        write_csv=False,
    )
    model = SentenceTransformer(model_dir, local_files_only=True)
    t0 = time.time()
    score = float(ev(model)["stsb_test_spearman_cosine"])
    return score, time.time() - t0


def run(work: Path, train_size: int, extra: list[str], log=print) -> dict[str, Any]:
    work.mkdir(parents=True, exist_ok=True)
    train = read_jsonl(DATA_DIR / "stsb" / "train.jsonl")
    sample = [train[i] for i in sorted(random.Random(SEED).sample(range(len(train)), min(train_size, len(train))))]
    f = write_jsonl(work / "stsb_train_sample.jsonl", sample)
    log(f"stsb: default pipeline on {len(sample)} rows ...")
    res = core_train(
        [
            f"dataset_path={f}",
            "dataset_name=stsb_bench",
            f"output_dir={work / 'stsb_model'}",
            f"runs_dir={work / 'runs'}",
            f"cache_dir={work / 'cache'}",
            *extra,
        ],
        work / "runs" / "stsb",
        work / "stsb.log",
    )
    base, base_s = spearman(bundled_model())
    tuned, tuned_s = spearman(str(work / "runs" / "stsb" / "model"))
    out = {
        "train_rows": len(sample),
        "test_rows": 1379,
        "base": base,
        "default": tuned,
        "wall_s": res["wall_s"],
        "peak_rss_mb": res["peak_rss_mb"],
        "cmd": res["cmd"].replace(str(work), "$WORK"),
        "model_dir": str(work / "runs" / "stsb" / "model"),
        "estimate": res.get("estimate"),
    }
    log(f"  stsb: {out}")
    return out

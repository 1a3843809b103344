"""Lever experiments: one extra pipeline variant on the MedQuAD protocol of the last run (same sizes rebuild the
same seeded protocol), evaluated by the shared evaluator; one JSON line appended to WORK/variants.jsonl.

    python -m tests.benchmarks.variant --quick "256 1neg" max_seq_length=256 mining.num_negatives=1
    python -m tests.benchmarks.variant --quick --eval-only DIR --max-seq-length 256 "candidate@256"
"""

from __future__ import annotations

import argparse
import json
import random
import re
from pathlib import Path

from . import medquad
from .common import core_train


def augment_queries(src: Path, dst: Path, share: float, seed: int = 0) -> Path:
    """The query-augmentation lever (LEVERS.md): a seeded `share` of the training queries lower-cased, punctuation
    dropped, and each word dropped with probability 0.25 (at least two kept), so that short template questions are
    not all the model sees. Same rows, same count: the run's steps do not change."""
    rng = random.Random(seed)
    rows = [json.loads(line) for line in src.read_text(encoding="utf-8").splitlines() if line.strip()]
    for row in rows:
        if rng.random() < share:
            words = re.sub(r"[^\w\s'-]", " ", row["query"].lower()).split()
            kept = [w for w in words if rng.random() >= 0.25]
            row["query"] = " ".join(kept if len(kept) >= 2 else words)
    dst.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return dst


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("name")
    ap.add_argument("overrides", nargs="*")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--train-size", type=int, default=2000)
    ap.add_argument("--dev-queries", type=int, default=0)
    ap.add_argument("--distractors", type=int, default=2000)
    ap.add_argument("--eval-only", help="evaluate this saved model dir instead of training")
    ap.add_argument("--max-seq-length", type=int, help="with --eval-only: evaluate at this length")
    ap.add_argument("--work", default="test-artifacts/bench")
    ap.add_argument("--augment-queries", type=float, default=0.0, help="share of training queries rewritten (lever)")
    a = ap.parse_intermixed_args()
    if a.quick:
        a.train_size, a.dev_queries, a.distractors = 200, 80, 150
    work = Path(a.work).resolve()
    p = medquad.build_protocol(a.train_size, a.dev_queries or None, a.distractors)
    row = {"name": a.name, "overrides": a.overrides}
    if a.eval_only:
        model_dir = a.eval_only
    else:
        slug = a.name.replace(" ", "_").replace("/", "_")
        train_file = work / "medquad_train_sample.jsonl"
        if a.augment_queries:
            train_file = augment_queries(train_file, work / f"train_{slug}.jsonl", a.augment_queries)
        res = core_train(
            [
                f"dataset_path={train_file}",
                f"corpus_path={work / 'medquad_distractors.jsonl'}",
                "dataset_name=medquad_bench",
                f"output_dir={work / ('v_' + slug + '_model')}",
                f"runs_dir={work / 'runs'}",
                f"cache_dir={work / 'cache' / ('v_' + slug)}",
                *a.overrides,
            ],
            work / "runs" / f"v_{slug}",
            work / f"v_{slug}.log",
        )
        t = res["metrics"]["timing"]
        row.update(
            wall_s=res["wall_s"],
            cpu_s=res["cpu_s"],
            peak_rss_mb=res["peak_rss_mb"],
            timing=t,
            step_evals=res["step_evals"],
            step_eval_overhead_s=res["step_eval_overhead_s"],
        )
        model_dir = str(work / "runs" / f"v_{slug}" / "model")
    from sentence_transformers import SentenceTransformer

    ev = medquad.shared_evaluator(p)
    model = SentenceTransformer(model_dir, local_files_only=True)
    if a.max_seq_length:
        model.max_seq_length = a.max_seq_length
    raw = ev(model)
    row["metrics"] = {m: float(raw[f"dev_cosine_{m}"]) for m in medquad.METRICS}
    print(json.dumps(row))
    with (work / "variants.jsonl").open("a") as f:
        f.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()

"""A second domain for the levers: sentence-to-paraphrase retrieval built from the STS Benchmark (LEVERS.md).

Every recipe lever so far was measured on MedQuAD (template questions, long answers). This protocol is shaped
otherwise: short sentences on both sides (headlines, image captions, forum posts), symmetric, lexically close
distractors. Fixed before any run:
- train: every STSb train pair with gold similarity >= 0.7, doc1 as query, doc2 as document (2,063 rows);
- test: every distinct doc1 of a dev or test pair with similarity >= 0.7 as a query, its doc2s as gold, against a
  corpus of every other distinct dev and test sentence (the low-similarity partners share many words);
- STSb test Spearman for each model as well (the issue's "not below base").

    python -m tests.benchmarks.paraphrase train NAME [key=value ...]   # the engine with these overrides
    python -m tests.benchmarks.paraphrase plain NAME                   # the plain recipe (plain_recipe.py)
    python -m tests.benchmarks.paraphrase eval NAME MODEL_DIR          # appends one JSON line to WORK/paraphrase.jsonl
"""

from __future__ import annotations

import argparse
import json
import subprocess
from pathlib import Path

from .common import DATA_DIR, PY, ROOT, bundled_model, core_train, read_jsonl, write_jsonl
from .stsb import spearman

WORK = ROOT / "test-artifacts" / "paraphrase"
MIN_SIMILARITY = 0.7


def build(work: Path = WORK) -> tuple[Path, Path]:
    """(training pairs file, protocol file for the evaluator and the plain recipe)."""
    work.mkdir(parents=True, exist_ok=True)
    train = [
        {"query": r["doc1"], "document": r["doc2"]}
        for r in read_jsonl(DATA_DIR / "stsb" / "train.jsonl")
        if r["similarity"] >= MIN_SIMILARITY
    ]
    held = read_jsonl(DATA_DIR / "stsb" / "dev.jsonl") + read_jsonl(DATA_DIR / "stsb" / "test.jsonl")
    gold: dict[str, set[str]] = {}
    for r in held:
        if r["similarity"] >= MIN_SIMILARITY and r["doc1"] != r["doc2"]:
            gold.setdefault(r["doc1"], set()).add(r["doc2"])
    texts = list(dict.fromkeys(t for r in held for t in (r["doc1"], r["doc2"])))
    corpus_texts = [t for t in texts if t not in gold]  # a query never retrieves itself
    cid = {t: f"d{i}" for i, t in enumerate(corpus_texts)}
    queries, relevant = {}, {}
    for i, (q, docs) in enumerate(gold.items()):
        ids = {cid[d] for d in docs if d in cid}
        if ids:
            queries[f"q{i}"], relevant[f"q{i}"] = q, sorted(ids)
    protocol = {"queries": queries, "corpus": {v: k for k, v in cid.items()}, "relevant": relevant}
    pfile = work / "protocol.json"
    pfile.write_text(json.dumps(protocol), encoding="utf-8")
    return write_jsonl(work / "train.jsonl", train), pfile


def evaluate(name: str, model_dir: str, pfile: Path, work: Path = WORK) -> dict:
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.evaluation import InformationRetrievalEvaluator

    p = json.loads(pfile.read_text(encoding="utf-8"))
    ev = InformationRetrievalEvaluator(
        p["queries"], p["corpus"], {k: set(v) for k, v in p["relevant"].items()}, name="para", batch_size=64
    )
    scores = ev(SentenceTransformer(model_dir, local_files_only=True))
    row = {
        "name": name,
        "ndcg@10": round(float(scores["para_cosine_ndcg@10"]), 4),
        "mrr@10": round(float(scores["para_cosine_mrr@10"]), 4),
        "stsb_spearman": round(spearman(model_dir)[0], 4),
        "queries": len(p["queries"]),
        "corpus": len(p["corpus"]),
    }
    with (work / "paraphrase.jsonl").open("a", encoding="utf-8") as f:
        f.write(json.dumps(row) + "\n")
    return row


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("what", choices=["train", "plain", "eval", "base"])
    ap.add_argument("name", nargs="?", default="base")
    ap.add_argument("rest", nargs="*")
    a = ap.parse_intermixed_args()
    train_file, pfile = build()
    slug = a.name.replace(" ", "_")
    if a.what == "base":
        print(evaluate("base", bundled_model(), pfile))
    elif a.what == "eval":
        print(evaluate(a.name, a.rest[0], pfile))
    elif a.what == "plain":
        out = WORK / f"plain_{slug}"
        cmd = [PY, "-m", "tests.benchmarks.plain_recipe", "--train", str(train_file), "--protocol", str(pfile)]
        subprocess.run([*cmd, "--output", str(out), "--result", str(out) + ".json"], cwd=ROOT, check=True)
        print(evaluate(a.name, str(out), pfile))
    else:
        run_dir = WORK / "runs" / slug
        res = core_train(
            [
                f"dataset_path={train_file}",
                "dataset_name=paraphrase_bench",
                f"output_dir={WORK / ('model_' + slug)}",
                f"runs_dir={WORK / 'runs'}",
                f"cache_dir={WORK / 'cache' / slug}",
                *a.rest,
            ],
            run_dir,
            WORK / f"{slug}.log",
        )
        print(json.dumps({k: res[k] for k in ("wall_s", "peak_rss_mb", "cpu_s")}))
        print(evaluate(a.name, str(run_dir / "model"), pfile))


if __name__ == "__main__":
    main()

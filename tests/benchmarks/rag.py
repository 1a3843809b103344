"""Benchmark — document indexes (core.retrieval.doc_index) on MedQuAD answers written as one .txt file each:

- index build throughput (chunks/s of `python -m core index build`) vs a plain `model.encode` + IndexFlatIP on the
  same chunk texts, and the build's peak RSS (a measured subprocess);
- an incremental rebuild after changing 1% of the files, as a share of the full build time;
- search p50 (query encoding included) on an index grown to `search_vectors` vectors: each added vector is an
  encoded chunk vector plus Gaussian noise (sigma 0.02 per dimension), renormalised, so the index holds realistic
  neighbourhoods without encoding 100k chunks;
- int8 ONNX encoding throughput vs torch fp32 on the same chunks, and recall@10 of the gold document for held-out
  MedQuAD dev questions with each.

    python -m tests.benchmarks.rag --docs 200 --search-vectors 5000   # a smoke run
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from .common import DATA_DIR, PY, bundled_model, read_jsonl, run_measured

SEED = 12345
PLAIN_SAMPLE = 3000  # chunks the plain encode is timed on
ONNX_FILES = 1000  # int8 vs fp32 on the chunks of this many files (the dev answers come first)


def write_docs(folder: Path, n_docs: int) -> dict[str, str]:
    """n_docs MedQuAD documents (every dev document first, then train ones) as files; {dev query: gold file}."""
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    dev = read_jsonl(DATA_DIR / "medquad" / "dev.jsonl")
    train = read_jsonl(DATA_DIR / "medquad" / "train.jsonl")
    docs = list(dict.fromkeys([r["document"] for r in dev] + [r["document"] for r in train]))[:n_docs]
    name = {d: f"doc{i:06d}.txt" for i, d in enumerate(docs)}
    for d, f in name.items():
        (folder / f).write_text(d, encoding="utf-8")
    return {r["query"]: name[r["document"]] for r in dev if r["document"] in name}


def build(model: str, docs: Path, out: Path, work: Path, label: str) -> dict[str, Any]:
    res = run_measured(
        [PY, "-m", "core", "index", "build", "--model", model, "--documents", str(docs), "--out", str(out)],
        work / f"rag_{label}.log",
    )
    if res["rc"] != 0:
        raise RuntimeError(f"index build failed, see {res['log']}")
    return {**res, "report": json.loads((out / "report.json").read_text())}


def plain_encode(model_dir: str, texts: list[str]) -> float:
    """Seconds for the obvious way: model.encode on every chunk, then IndexFlatIP.add."""
    import faiss

    from core.models.load import load_model

    model = load_model(model_dir)
    model.encode(texts[:8])
    t0 = time.perf_counter()
    emb = model.encode(texts, batch_size=64, normalize_embeddings=True, convert_to_numpy=True)
    index = faiss.IndexFlatIP(emb.shape[1])
    index.add(emb)
    return time.perf_counter() - t0


def search_p50(index_dir: Path, queries: list[str], n_vectors: int) -> dict[str, Any]:
    import pandas as pd

    from core.retrieval.doc_index import DocIndex, _make_index, load_index

    ix = load_index(index_dir, fast_queries=True)
    base = ix.index.reconstruct_n(0, ix.index.ntotal)
    rng = np.random.default_rng(SEED)
    extra = base[rng.integers(0, len(base), max(0, n_vectors - len(base)))]
    extra = extra + rng.normal(0, 0.02, extra.shape).astype(np.float32)
    vectors = np.vstack([base, extra / np.linalg.norm(extra, axis=1, keepdims=True)]).astype(np.float32)
    index, kind, _ = _make_index(vectors, ix.manifest["index"]["exact_limit"])
    chunks = pd.concat([ix.chunks, ix.chunks.iloc[np.arange(len(extra)) % len(ix.chunks)]], ignore_index=True)
    grown = DocIndex(index_dir, ix.manifest, chunks, index, ix.encoder, fast_queries=True)
    for q in queries[:10]:
        grown.search(q, 10)
    times = []
    for q in queries[10:]:
        t = time.perf_counter()
        grown.search(q, 10)
        times.append((time.perf_counter() - t) * 1000)
    return {
        "vectors": len(vectors),
        "index": kind,
        "queries": len(times),
        "p50_ms": float(np.percentile(times, 50)),
        "p95_ms": float(np.percentile(times, 95)),
    }


def onnx_compare(model_dir: str, index_dir: Path, gold: dict[str, str], work: Path) -> dict[str, Any]:
    """int8 vs torch fp32: encoding throughput on the index's chunks, recall@10 of the gold file for dev queries."""
    import faiss
    import pandas as pd

    from core.models.onnx_export import OnnxEmbedder, export_onnx
    from core.retrieval.doc_index import TorchEncoder

    export = export_onnx(model_dir, work / "rag_onnx", quantize="int8")
    chunks = pd.read_parquet(index_dir / "chunks.parquet")
    files = sorted(set(chunks["source"]))[:ONNX_FILES]
    chunks = chunks[chunks["source"].isin(set(files))].reset_index(drop=True)
    texts = chunks["text"].tolist()
    out: dict[str, Any] = {"chunks": len(texts), "export_check": export.checks}
    queries = [q for q, f in gold.items() if f in set(files)]
    for name, enc in (("torch_fp32", TorchEncoder(model_dir)), ("onnx_int8", OnnxEmbedder(work / "rag_onnx" / "int8"))):
        enc.encode(texts[:8])
        t0 = time.perf_counter()
        emb = enc.encode(texts, 64)
        out[f"{name}_chunks_per_s"] = len(texts) / (time.perf_counter() - t0)
        index = faiss.IndexFlatIP(emb.shape[1])
        index.add(emb)
        _, ids = index.search(enc.encode(queries, 64), 10)
        hits = [gold[q] in set(chunks["source"].iloc[row]) for q, row in zip(queries, ids)]
        out[f"{name}_recall@10"] = float(np.mean(hits))
    out["int8_speedup"] = out["onnx_int8_chunks_per_s"] / out["torch_fp32_chunks_per_s"]
    out["recall_change"] = out["onnx_int8_recall@10"] - out["torch_fp32_recall@10"]
    out["held_out_queries"] = len(queries)
    return out


def run(work: Path, n_docs: int = 20_000, search_vectors: int = 100_000, log=print) -> dict[str, Any]:
    work = Path(work)
    model = bundled_model()
    docs, index = work / "rag_docs", work / "rag_index"
    gold = write_docs(docs, n_docs)
    shutil.rmtree(index, ignore_errors=True)
    full = build(model, docs, index, work, "full")
    r = full["report"]
    log(f"rag: built {r['chunks']} chunks in {r['seconds']:.0f}s ({r['embedded'] / r['embed_seconds']:.0f} chunks/s)")
    import pandas as pd

    texts = pd.read_parquet(index / "chunks.parquet")["text"].tolist()
    # The plain way's rate from a seeded sample of the same chunks: encoding all of them again in fp32 would cost
    # more than the build itself.
    texts = random.Random(SEED).sample(texts, min(len(texts), PLAIN_SAMPLE))
    plain_s = plain_encode(model, texts)
    files = sorted(docs.iterdir())
    for f in random.Random(SEED).sample(files, max(1, len(files) // 100)):
        f.write_text(f.read_text(encoding="utf-8") + "\n\nUpdated: reviewed again this year.", encoding="utf-8")
    inc = build(model, docs, index, work, "incremental")
    log(f"rag: incremental rebuild {inc['report']['seconds']:.1f}s, embedded {inc['report']['embedded']}")
    queries = random.Random(SEED).sample(list(gold), min(110, len(gold)))
    search = search_p50(index, queries, search_vectors)
    log(f"rag: search p50 {search['p50_ms']:.1f} ms on {search['vectors']} vectors")
    onnx = onnx_compare(model, index, gold, work)
    return {
        "docs": n_docs,
        "chunks": r["chunks"],
        "build_s": r["seconds"],
        "embed_s": r["embed_seconds"],
        "build_chunks_per_s": r["embedded"] / r["embed_seconds"],
        "plain_chunks_per_s": len(texts) / plain_s,
        "plain_sample": len(texts),
        "build_vs_plain": (r["embedded"] / r["embed_seconds"]) / (len(texts) / plain_s),
        "build_wall_s": full["wall_s"],
        "build_peak_rss_mb": full["peak_rss_mb"],
        "incremental_s": inc["report"]["seconds"],
        "incremental_embedded": inc["report"]["embedded"],
        "incremental_share": inc["report"]["seconds"] / r["seconds"],
        "incremental_share_after_load": (inc["report"]["seconds"] - inc["report"]["load_seconds"])
        / (r["seconds"] - r["load_seconds"]),
        "search": search,
        "onnx": onnx,
        "cmd": f"python -m core index build --model <bundled> --documents <{n_docs} MedQuAD files> --out <dir>",
    }


def markdown(x: dict[str, Any]) -> list[str]:
    s, o = x["search"], x["onnx"]
    return [
        "## RAG — document indexes",
        "",
        f"{x['docs']} MedQuAD documents, one .txt file each, bundled all-MiniLM-L6-v2 (chunks of <= 254 tokens, "
        f"overlap 32) -> {x['chunks']} chunks. Command: `{x['cmd']}`.",
        "",
        "| measure | value |",
        "|---|---:|",
        f"| index build, embedding (chunks/s) | {x['build_chunks_per_s']:.1f} |",
        f"| plain model.encode + IndexFlatIP (chunks/s) | {x['plain_chunks_per_s']:.1f} |",
        f"| build vs plain | {x['build_vs_plain']:.2f}x |",
        f"| full build (s, model load included) / process wall s | {x['build_s']:.1f} / {x['build_wall_s']:.0f} |",
        f"| peak RSS of the build (MB) | {x['build_peak_rss_mb']} |",
        f"| incremental rebuild after changing 1% of files (s; chunks embedded) | {x['incremental_s']:.1f}; "
        f"{x['incremental_embedded']} |",
        f"| incremental / full build time (model load excluded) | {x['incremental_share']:.1%} "
        f"({x['incremental_share_after_load']:.1%}) |",
        f"| search p50 / p95 (ms, query encoding included; {s['vectors']} vectors, {s['index']}) | "
        f"{s['p50_ms']:.1f} / {s['p95_ms']:.1f} |",
        f"| plain encode timed on (chunks, seeded sample) | {x.get('plain_sample', '—')} |",
        f"| torch fp32 / ONNX int8 encoding (chunks/s; {o['chunks']} chunks) | {o['torch_fp32_chunks_per_s']:.1f} / "
        f"{o['onnx_int8_chunks_per_s']:.1f} ({o['int8_speedup']:.2f}x) |",
        f"| recall@10 of the gold document, {o['held_out_queries']} dev questions: fp32 / int8 | "
        f"{o['torch_fp32_recall@10']:.4f} / {o['onnx_int8_recall@10']:.4f} ({o['recall_change']:+.4f}) |",
        "",
        "The 100k-vector search index is grown from the encoded chunks: each extra vector is a chunk vector plus "
        "Gaussian noise (sigma 0.02 per dimension), renormalised.",
        "",
    ]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m tests.benchmarks.rag", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--docs", type=int, default=20_000)
    ap.add_argument("--search-vectors", type=int, default=100_000)
    ap.add_argument("--work", default="test-artifacts/bench")
    a = ap.parse_args(argv)
    if not (DATA_DIR / "medquad" / "dev.jsonl").exists():
        print(f"rag benchmark skipped: no data at {DATA_DIR}")
        return 0
    work = Path(a.work).resolve()
    work.mkdir(parents=True, exist_ok=True)
    res = run(work, a.docs, a.search_vectors)
    print("\n".join(markdown(res)))
    (work / "rag_results.json").write_text(json.dumps(res, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Benchmark 3 — Comparison-tab latency: two models' top-10 over a 10,000-document index (core.retrieval.search)."""

from __future__ import annotations

import random
import time
from typing import Any

import numpy as np

from .common import DATA_DIR, bundled_model, read_jsonl

SEED = 12345


def corpus_10k(n: int) -> list[str]:
    """n distinct STS Benchmark sentences (short texts keep the one-off index build cheap; the query cost of a
    flat index does not depend on document length)."""
    texts = []
    for split in ("train", "dev", "test"):
        for r in read_jsonl(DATA_DIR / "stsb" / f"{split}.jsonl"):
            texts += [r["doc1"], r["doc2"]]
    texts = list(dict.fromkeys(texts))
    return [texts[i] for i in sorted(random.Random(SEED).sample(range(len(texts)), min(n, len(texts))))]


def run(tuned_dir: str, n_docs: int = 10_000, n_queries: int = 100, log=print) -> dict[str, Any]:
    from core.retrieval.compare import search_both
    from core.retrieval.search import get_index

    corpus = corpus_10k(n_docs)
    queries = list(dict.fromkeys(r["query"] for r in read_jsonl(DATA_DIR / "medquad" / "dev.jsonl")))
    queries = random.Random(SEED).sample(queries, n_queries + 10)
    t0 = time.time()
    models = [bundled_model(), tuned_dir]
    indexes = [get_index(m, corpus) for m in models]
    build_s = time.time() - t0
    log(f"latency: built 2 indexes of {len(corpus)} documents in {build_s:.0f}s")

    def engine(q: str):  # what the Compare tab's search calls: both models' top-10 with rank changes
        return search_both(q, 10, models[0], models[1], corpus)

    def sequential(q: str):  # the obvious way: each model encodes on torch's default intra-op threads in turn
        return [ix.index.search(ix.model.encode([q], normalize_embeddings=True), 10) for ix in indexes]

    def measure(fn) -> list[float]:
        for q in queries[:10]:  # warm-up
            fn(q)
        times = []
        for q in queries[10:]:
            t = time.perf_counter()
            fn(q)
            times.append((time.perf_counter() - t) * 1000)
        return times

    import torch

    times, seq = measure(engine), measure(sequential)
    out = {
        "docs": len(corpus),
        "queries": len(times),
        "p50_ms": float(np.percentile(times, 50)),
        "p95_ms": float(np.percentile(times, 95)),
        "threads": torch.get_num_threads(),
        "p50_ms_sequential": float(np.percentile(seq, 50)),
        "p95_ms_sequential": float(np.percentile(seq, 95)),
        "index_build_s": round(build_s, 1),
        "query_encoder": "onnxruntime fp32"
        if indexes[0].query_encoder is not None
        else f"torch {indexes[0].precision}",
    }
    log(f"  latency: {out}")
    return out

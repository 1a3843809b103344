"""sentence-transformers evaluators for each data format, and metric names everyone can read.

Pairs/triplets: InformationRetrievalEvaluator (test queries against every document of the dataset plus the
extra corpus; every document paired with the same query text counts as relevant), plus TripletEvaluator for
triplets. Scored pairs: EmbeddingSimilarityEvaluator (Spearman).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import pandas as pd

from core.config.schema import IR_METRICS
from core.data.validate import positive_column
from core.models.devices import local_devices
from core.models.encoding import counting, inference_model


def documents_of(df: pd.DataFrame, fmt: str) -> list[str]:
    cols = ["document"] if fmt == "pairs" else ["positive", "negative"] if fmt == "triplets" else []
    return list(dict.fromkeys(t for c in cols for t in df[c]))


def ir_data(test: pd.DataFrame, fmt: str, corpus: list[str]) -> tuple[dict, dict, dict]:
    """(queries, corpus, relevant_docs) dicts with stable ids for the IR evaluator."""
    pos_col = positive_column(fmt)
    doc_id = {t: f"d{i}" for i, t in enumerate(dict.fromkeys(corpus))}
    for t in test[pos_col]:  # a test positive is always in the corpus
        doc_id.setdefault(t, f"d{len(doc_id)}")
    q_id: dict[str, str] = {}
    relevant: dict[str, set[str]] = {}
    for q, d in zip(test["query"], test[pos_col]):
        qid = q_id.setdefault(q, f"q{len(q_id)}")
        relevant.setdefault(qid, set()).add(doc_id[d])
    return {v: k for k, v in q_id.items()}, {v: k for k, v in doc_id.items()}, relevant


def _bounded(docs: dict[str, str], relevant: dict, max_size: int | None, seed: int) -> dict[str, str]:
    """At most `max_size` documents: every relevant one, then a seeded sample of the others."""
    if not max_size or len(docs) <= max_size:
        return docs
    needed = {d for ids in relevant.values() for d in ids}
    others = [d for d in docs if d not in needed]
    keep = needed | set(random.Random(seed).sample(others, max(0, min(len(others), max_size - len(needed)))))
    return {d: t for d, t in docs.items() if d in keep}


def build_evaluator(
    test: pd.DataFrame,
    fmt: str,
    corpus: list[str],
    batch_size: int = 64,
    max_corpus_size: int | None = None,
    seed: int = 42,
    name: str = "test",
    prompts: dict[str, str] | None = None,
):
    """The evaluator for `fmt` on the test split. `max_corpus_size` bounds the corpus (relevant documents are
    always kept) so evaluations during training stay cheap; the final evaluation passes None. `prompts`
    ({"query", "document"}) go before queries and documents (the triplet evaluator takes them from model.prompts)."""
    from sentence_transformers.sentence_transformer.evaluation import (
        EmbeddingSimilarityEvaluator,
        InformationRetrievalEvaluator,
        SequentialEvaluator,
        TripletEvaluator,
    )

    if test.empty:
        return None
    if fmt == "scored":  # symmetric: both sides as queries, the way training prompts them
        q = (prompts or {}).get("query") or ""
        return EmbeddingSimilarityEvaluator(
            [q + t for t in test["doc1"]],
            [q + t for t in test["doc2"]],
            list(test["similarity"]),
            batch_size=batch_size,
            name=name,
            write_csv=False,
        )
    queries, docs, relevant = ir_data(test, fmt, corpus)
    docs = _bounded(docs, relevant, max_corpus_size, seed)
    ir = InformationRetrievalEvaluator(
        queries,
        docs,
        relevant,
        accuracy_at_k=[1, 5, 10],
        precision_recall_at_k=[10],
        mrr_at_k=[10],
        ndcg_at_k=[10],
        map_at_k=[100],
        batch_size=batch_size,
        name=name,
        write_csv=False,
        score_functions=None,
        main_score_function="cosine",
        query_prompt=(prompts or {}).get("query"),
        corpus_prompt=(prompts or {}).get("document"),
    )
    if fmt == "pairs":
        return ir
    trip = TripletEvaluator(
        list(test["query"]),
        list(test["positive"]),
        list(test["negative"]),
        batch_size=batch_size,
        name=f"{name}_triplet",
        write_csv=False,
    )
    return SequentialEvaluator([ir, trip], main_score_function=lambda scores: scores[0])


def normalise_metrics(raw: dict[str, Any]) -> dict[str, float]:
    """`eval_test_cosine_ndcg@10` -> `ndcg@10`; `test_spearman_cosine` -> `spearman`; triplet accuracy kept apart."""
    out: dict[str, float] = {}
    for key, value in raw.items():
        if not isinstance(value, (int, float)):
            continue
        k = key.removeprefix("eval_")
        if "_triplet_" in k and "accuracy" in k:
            out["triplet_accuracy"] = float(value)
            continue
        for name in IR_METRICS:
            if k.endswith(f"cosine_{name}"):
                out[name] = float(value)
        if k.endswith("spearman_cosine"):
            out["spearman"] = float(value)
        elif k.endswith("pearson_cosine"):
            out["pearson"] = float(value)
    return out


def texts_to_encode(evaluator, known: dict[str, Any] | None = None) -> int:
    """How many texts `evaluator` will encode (the corpus not at all when `known` holds it): a progress total."""
    if hasattr(evaluator, "corpus"):
        corpus = 0 if known and all(t in known for t in evaluator.corpus) else len(evaluator.corpus)
        return len(evaluator.queries) + corpus
    if hasattr(evaluator, "evaluators"):  # SequentialEvaluator
        return sum(texts_to_encode(e, known) for e in evaluator.evaluators)
    return sum(
        len(getattr(evaluator, k, None) or [])
        for k in ("sentences1", "sentences2", "anchors", "positives", "negatives")
    )


def evaluate(
    model,
    evaluator,
    known: dict[str, Any] | None = None,
    precision: str = "auto",
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, float]:
    """Run `evaluator`. `known` maps corpus texts to embeddings already computed by this same model (e.g. while
    mining): an IR evaluation whose whole corpus is known skips encoding it. The texts are encoded in `precision`
    (core.models.encoding: bf16 where this machine computes it faster); `progress(done, total)` hears how many texts."""
    if evaluator is None:
        return {}
    devices = local_devices()
    if devices and not known and hasattr(evaluator, "corpus"):  # one process, several GPUs: encode on all of them
        texts = list(evaluator.corpus)
        known = dict(
            zip(
                texts,
                model.encode_document(
                    texts,
                    device=devices,
                    batch_size=evaluator.batch_size,
                    normalize_embeddings=True,
                    convert_to_numpy=True,
                ),
            )
        )
    encoder = inference_model(model, precision)
    total = texts_to_encode(evaluator, known)
    with counting(encoder, lambda done: progress(done, total) if progress else None):
        if known and hasattr(evaluator, "corpus") and all(t in known for t in evaluator.corpus):
            import numpy as np
            import torch

            # The evaluator multiplies these with the query embeddings it encodes on the model's device.
            emb = torch.from_numpy(np.stack([known[t] for t in evaluator.corpus])).to(model.device)
            return normalise_metrics(evaluator(encoder, corpus_embeddings=emb))
        return normalise_metrics(evaluator(encoder))


def shown_metrics(selected: list[str] | None, *results: dict[str, Any]) -> list[str]:
    """The metrics of `selected` (evaluation.metrics) that `results` hold, in its order. When they hold none of them
    (scored pairs measure Spearman, not retrieval), every metric they hold."""
    present = [k for r in results for k in r]
    keys = [k for k in (selected or []) if k in present]
    return keys or list(dict.fromkeys(present))


def metrics_table(before: dict[str, float], after: dict[str, float], metrics: list[str] | None = None) -> str:
    """A plain-text before/after table for the CLI and the model card (markdown-compatible); `metrics` (the
    config's evaluation.metrics) decides the rows."""
    keys = shown_metrics(metrics, after, before)
    lines = ["| metric | before | after | change |", "|---|---:|---:|---:|"]
    for k in keys:
        b, a = before.get(k), after.get(k)
        change = f"{a - b:+.4f}" if a is not None and b is not None else ""
        lines.append(f"| {k} | {'' if b is None else f'{b:.4f}'} | {'' if a is None else f'{a:.4f}'} | {change} |")
    return "\n".join(lines)

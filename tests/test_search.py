"""core/retrieval/search.py and core/models/onnx_query.py with the real bundled model: the onnxruntime query encoder gives torch's
embeddings (or steps aside), and a two-model search ranks exactly as a full ranking of the corpus does."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from core.config.schema import DEFAULT_MODEL
from core.models.load import load_model, shared_model
from core.models.onnx_query import query_encoder
from core.retrieval import compare as cmp
from core.retrieval.search import SearchIndex

QUERIES = ["vpn drops every few minutes", "How do I reset my password?", "printer", "Wie installiere ich Outlook?"]


@pytest.fixture(scope="module")
def corpus(sample_pairs) -> list[str]:
    docs = list(dict.fromkeys(r["document"] for r in sample_pairs))[:60]
    return docs + docs[:3]  # duplicates: near-ties (a different batch padding moves a score by ~1e-7)


def test_onnx_encoder_gives_the_torch_embedding():
    model = shared_model(DEFAULT_MODEL)
    encoder = query_encoder(model)
    assert encoder is not None, "onnxruntime is a dependency: the fast path must be taken for MiniLM"
    for q in QUERIES:
        expected = model.encode([q], normalize_embeddings=True, convert_to_numpy=True)
        assert np.abs(encoder(q) - expected).max() < 1e-5, q


def test_onnx_encoder_applies_the_models_default_prompt():
    model = load_model(DEFAULT_MODEL)
    model.prompts, model.default_prompt_name = {"query": "query: "}, "query"
    encoder = query_encoder(model)
    plain = shared_model(DEFAULT_MODEL).encode([QUERIES[0]], normalize_embeddings=True)
    expected = model.encode([QUERIES[0]], normalize_embeddings=True)
    assert np.abs(encoder(QUERIES[0]) - expected).max() < 1e-5
    assert np.abs(encoder(QUERIES[0]) - plain).max() > 1e-3  # the prompt changed the embedding


def test_without_onnxruntime_search_uses_torch(monkeypatch, corpus, fp32_encoding):
    fast, slow = SearchIndex(DEFAULT_MODEL, corpus), SearchIndex(DEFAULT_MODEL, corpus)
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import fails, as on an install without it
    assert query_encoder(load_model(DEFAULT_MODEL)) is None
    slow.query_encoder = None  # what such an install builds
    assert fast.query_encoder is not None
    for q in QUERIES:
        assert [h.index for h in fast.search(q, 5)] == [h.index for h in slow.search(q, 5)]


def test_search_both_ranks_as_a_full_ranking(corpus):
    gold = {corpus[0], corpus[5]}
    short = cmp.get_index(DEFAULT_MODEL, corpus)
    for q in QUERIES:
        out = cmp.search_both(q, 8, DEFAULT_MODEL, DEFAULT_MODEL, corpus, gold)
        scores = short._scores(q)
        full, top = cmp._ranks(scores[None])[0], np.argsort(-scores, kind="stable")[:8]
        for side in ("model_a", "model_b"):
            assert [h["text"] for h in out[side]] == [corpus[i] for i in top]
            assert [h["rank"] for h in out[side]] == [int(full[i]) for i in top]
            assert all(h["rank"] == h["other_rank"] and h["change"] == "=" for h in out[side])  # same model twice
        assert out["gold_rank"]["model_a"] == min(int(full[i]) for i, t in enumerate(corpus) if t in gold)
    assert cmp.search_both(QUERIES[0], 3, DEFAULT_MODEL, DEFAULT_MODEL, corpus)["gold_rank"]["model_a"] is None


@pytest.mark.parametrize("k", [0, -3, 1.5, True])
def test_k_below_one_or_not_whole_is_refused(corpus, k):
    with pytest.raises(ValueError, match="k \\(results per query\\) must be a whole number of at least 1"):
        SearchIndex(DEFAULT_MODEL, corpus).search("printer", k)


def test_cli_counts_are_checked_by_argparse():
    import argparse

    from core.cli.parser import positive_int

    assert positive_int("3") == 3
    for bad in ("0", "-1", "x"):
        with pytest.raises(argparse.ArgumentTypeError):
            positive_int(bad)


def test_empty_texts_are_refused_not_answered(corpus):
    from core.retrieval.search import similarity

    with pytest.raises(ValueError, match="the query is empty"):
        SearchIndex(DEFAULT_MODEL, corpus).search("   ")
    for text, others in (("", ["x"]), ("x", [""]), ("x", [])):
        with pytest.raises(ValueError, match="none of them empty"):
            similarity(DEFAULT_MODEL, text, others)

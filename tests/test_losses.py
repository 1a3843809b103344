"""core/training/losses.py with the real bundled model: length-chunked embedding gives the padded batch's embeddings and
gradients, and the loss chosen for each config."""

from __future__ import annotations

import pytest
import torch

from core.config.schema import build_config
from core.models.load import load_model
from core.training.losses import build_loss, embed_by_length
from tests.conftest import SAMPLES, read_jsonl


@pytest.fixture(scope="module")
def model():
    return load_model("sentence-transformers/all-MiniLM-L6-v2", max_seq_length=64, device="cpu")


def _grads(model, loss_fn) -> torch.Tensor:
    model.zero_grad()
    loss_fn().backward()
    return torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None])


def test_chunks_give_the_padded_batch_embeddings_and_gradients(model):
    rows = read_jsonl(SAMPLES / "it_helpdesk_pairs.jsonl")[:12]
    texts = [r["document"][: 40 + 37 * i] for i, r in enumerate(rows)]  # lengths from ~10 to 64 tokens
    features = model.preprocess(texts)
    assert len(set(features["attention_mask"].sum(1).tolist())) > 6
    model.eval()  # no dropout: both ways must see the same network
    padded = lambda: model(dict(features))["sentence_embedding"]  # noqa: E731
    chunked = lambda: embed_by_length(model, features, chunk_tokens=128)  # noqa: E731  ~2-12 texts per chunk
    with torch.no_grad():
        assert torch.allclose(padded(), chunked(), atol=1e-5)
    target, weight = torch.linspace(-1, 1, 384), torch.arange(1.0, 13.0)  # a different weight per row
    g_padded = _grads(model, lambda: ((padded() @ target) * weight).pow(2).sum())
    g_chunked = _grads(model, lambda: ((chunked() @ target) * weight).pow(2).sum())
    # float sums in another order: equal up to rounding (a mis-ordered chunk would change the direction entirely)
    assert torch.nn.functional.cosine_similarity(g_padded, g_chunked, dim=0) > 0.99999
    assert (g_padded - g_chunked).norm() < 1e-3 * g_padded.norm()
    model.zero_grad()


@pytest.mark.parametrize(
    ("overrides", "fmt", "name", "chunked"),
    [
        ({}, "pairs", "MultipleNegativesRankingLoss", True),
        ({}, "scored", "CoSENTLoss", True),
        ({"mini_batch_size": 8}, "pairs", "CachedMultipleNegativesRankingLoss", False),
        ({"matryoshka_dims": [384, 128]}, "triplets", "MatryoshkaLoss", False),
    ],
)
def test_the_loss_for_each_config(model, overrides, fmt, name, chunked):
    loss = build_loss(build_config(overrides), fmt, model)
    assert type(loss).__name__ == name
    assert (type(loss).forward.__module__ == "core.training.losses") == chunked


@pytest.mark.parametrize(
    ("overrides", "fmt", "says"),
    [
        ({"loss": "cosent"}, "pairs", "cosent learns from similarity scores, and this data is pairs"),
        ({"loss": "mnrl"}, "scored", "mnrl would ignore the similarity scores"),
        ({"mini_batch_size": 8, "loss": "cached_mnrl"}, "scored", "cached_mnrl would ignore"),
    ],
)
def test_a_loss_that_cannot_read_the_data_is_refused(overrides, fmt, says):
    from core.config.rules import check_loss

    with pytest.raises(ValueError, match=says):
        check_loss(build_config(overrides), fmt)
    check_loss(build_config({}), fmt)  # auto always fits


def test_the_symmetric_loss_also_ranks_the_queries_for_each_document(model):
    """loss: symmetric_mnrl = the mean of MNRL's query->document loss and the document->query loss over the batch's
    queries (the library's MNRL with both directions, each its own softmax), through the length-chunked forward."""
    rows = read_jsonl(SAMPLES / "it_helpdesk_pairs.jsonl")[:8]
    features = [model.preprocess([r[c] for r in rows]) for c in ("query", "document")]
    model.eval()
    labels = torch.arange(len(rows))
    symmetric = build_loss(build_config({"loss": "symmetric_mnrl"}), "pairs", model)
    assert type(symmetric).forward.__module__ == "core.training.losses"  # still chunked on the CPU
    with torch.no_grad():
        q, d = (torch.nn.functional.normalize(embed_by_length(model, dict(f)), dim=-1) for f in features)
        scores = 20 * q @ d.T
        by_hand = (
            torch.nn.functional.cross_entropy(scores, labels) + torch.nn.functional.cross_entropy(scores.T, labels)
        ) / 2
        got = symmetric([dict(f) for f in features], None)
        one_way = build_loss(build_config({}), "pairs", model)([dict(f) for f in features], None)
    assert torch.allclose(got, by_hand, atol=1e-5)
    assert not torch.allclose(got, one_way, atol=1e-3)

"""Encoding corpora: the bf16 copy, the per-machine decision and its cache, progress counts."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from core.config.schema import EmbedConfig
from core.evaluation.evaluators import build_evaluator, evaluate
from core.models import encoding
from core.models.load import bundled_model_path, load_model
from tests.conftest import SAMPLES, read_jsonl


@pytest.fixture(scope="module")
def model():
    return load_model(bundled_model_path(), max_seq_length=64)


@pytest.fixture(scope="module")
def texts():
    return [r["document"] for r in read_jsonl(SAMPLES / "it_helpdesk_pairs.jsonl")[:40]]


def test_bf16_copy_matches_fp32_and_leaves_the_model_alone(model, texts):
    fast = encoding.inference_model(model, "bf16")
    assert fast is not model and fast[0].auto_model.dtype == torch.bfloat16
    assert all(p.dtype == torch.float32 for p in model.parameters()), "the model being trained keeps fp32 weights"
    ref = model.encode(texts, normalize_embeddings=True)
    got = fast.encode(texts, normalize_embeddings=True)
    assert got.dtype == np.float32, "token embeddings go back to fp32: pooling and scores are fp32"
    assert float((ref * got).sum(axis=1).min()) >= encoding.MIN_COSINE
    assert encoding.inference_model(model, "fp32") is model


def test_the_decision_is_measured_once_and_cached(model, tmp_path, monkeypatch):
    monkeypatch.setenv("STUDIO_PROBE_CACHE", str(tmp_path))
    monkeypatch.setattr(encoding, "_decisions", {})
    result = encoding.decide(model)
    assert {"fp32_s", "bf16_s", "min_cosine", "bf16", "train_fp32_s", "train_bf16_s", "train_bf16"} <= set(result)
    assert result["fp32_s"] > 0 and result["train_fp32_s"] > 0 and result["train_bf16_s"] > 0
    assert not model.training and all(p.grad is None for p in model.parameters()), "the probe trains a copy"
    assert result["min_cosine"] >= encoding.MIN_COSINE, "bf16 MiniLM equals fp32 to 0.99 on any CPU"
    path = tmp_path / "embedding-studio" / encoding.PROBE_FILE
    cached = json.loads(path.read_text())
    assert list(cached.values()) == [result]
    # The next process reads the file instead of measuring again: flip the cached verdict and see it obeyed.
    key = next(iter(cached))
    for verdict, expected in ((True, "bf16"), (False, "fp32")):
        path.write_text(json.dumps({key: {**result, "bf16": verdict}}))
        monkeypatch.setattr(encoding, "_decisions", {})
        assert encoding.encode_precision(model, "auto") == expected
    assert encoding.encode_precision(model, "fp32") == "fp32" and encoding.encode_precision(model, "bf16") == "bf16"
    # Training's `precision: auto` on a CPU follows the measured training step, bf16 autocast where it was faster.
    for verdict, args in ((True, {"bf16": True, "use_cpu": True}), (False, {})):
        path.write_text(json.dumps({key: {**result, "train_bf16": verdict}}))
        monkeypatch.setattr(encoding, "_decisions", {})
        assert encoding.training_precision(EmbedConfig(), model) == args
    assert encoding.training_precision(EmbedConfig(precision="fp32"), model) == {}
    assert encoding.training_precision(EmbedConfig(precision="bf16"), model) == {"bf16": True, "use_cpu": True}
    # A cache written before training was measured is measured again, not read as "fp32".
    path.write_text(json.dumps({key: {k: v for k, v in result.items() if not k.startswith("train")}}))
    monkeypatch.setattr(encoding, "_decisions", {})
    assert "train_bf16" in encoding.decide(model)


def test_a_fine_tuned_copy_shares_the_decision(model):
    other = load_model(bundled_model_path(), max_seq_length=128)
    assert encoding._architecture(other) == encoding._architecture(model)
    assert "[" in encoding.cpu_name() and encoding.cpu_name() in encoding.machine_id()


def test_counting_reports_texts_encoded(model, texts):
    seen: list[int] = []
    with encoding.counting(model, seen.append, every_s=0):
        model.encode(texts, batch_size=16)
    assert seen == [16, 32, 40]
    model.encode(texts[:3])  # the hook is gone after the block
    assert seen[-1] == 40


def test_evaluation_reports_progress_and_skips_known_corpus(model, texts):
    test = pd.DataFrame({"query": [f"question {i}" for i in range(10)], "document": texts[:10]})
    evaluator = build_evaluator(test, "pairs", texts, batch_size=16)
    calls: list[tuple[int, int]] = []
    metrics = evaluate(model, evaluator, precision="fp32", progress=lambda d, t: calls.append((d, t)))
    assert "ndcg@10" in metrics and calls and calls[0][1] == 10 + len(texts)
    known = dict(zip(texts, model.encode(texts, normalize_embeddings=True)))
    calls.clear()
    again = evaluate(model, evaluator, known, precision="fp32", progress=lambda d, t: calls.append((d, t)))
    assert calls[0] == (10, 10), "only the queries are encoded when the corpus is known"
    assert again["ndcg@10"] == pytest.approx(metrics["ndcg@10"], abs=1e-6)

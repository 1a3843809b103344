"""`export-onnx` with the real bundled model: the fp32 and int8 copies load in onnxruntime, match torch within the
thresholds, and search a document index built with the torch model."""

from __future__ import annotations

import json

import numpy as np
import pytest

from core.__main__ import main
from core.config.schema import DEFAULT_MODEL
from core.models.load import shared_model
from core.models.onnx_export import OnnxEmbedder
from core.retrieval.doc_index import build_index, get_encoder, load_index
from tests.rag_helpers import make_documents


@pytest.mark.slow
def test_export_fp32_and_int8_match_torch_and_search_an_index(tmp_path, capsys):
    out = tmp_path / "onnx"
    assert main(["export-onnx", "--model", DEFAULT_MODEL, "--out", str(out), "--quantize", "int8"]) == 0
    printed = capsys.readouterr().out
    assert "fp32" in printed and "int8" in printed and "FAILED" not in printed
    checks = {c["variant"]: c for c in json.loads((out / "export_check.json").read_text())}
    assert checks["fp32"]["min_cosine"] >= 0.999 and checks["int8"]["min_cosine"] >= 0.99
    assert checks["int8"]["size_mb"] < checks["fp32"]["size_mb"] / 2

    texts = ["A question nobody asked during the export check", "Zwei Sätze. Two languages!"]
    expected = shared_model(DEFAULT_MODEL).encode(texts, normalize_embeddings=True)
    for folder, threshold in ((out, 0.999), (out / "int8", 0.99)):
        got = OnnxEmbedder(folder).encode(texts)
        assert np.allclose(np.linalg.norm(got, axis=1), 1, atol=1e-4)
        assert (got * expected).sum(axis=1).min() >= threshold
        assert type(get_encoder(folder)).__name__ == "OnnxEmbedder"

    docs = make_documents(tmp_path / "docs", bad=False)
    build_index(DEFAULT_MODEL, docs, tmp_path / "index", chunk_tokens=30)
    for folder in (out, out / "int8"):
        index = load_index(tmp_path / "index", model=folder)  # same fingerprint as the torch model
        assert index.search("descaling the coffee machine", k=1)[0].source == "manual.pdf"
    report = build_index(out / "int8", docs, tmp_path / "index", chunk_tokens=30)
    assert report.embedded == 0, "an ONNX copy is the same model: its index reuses every vector"

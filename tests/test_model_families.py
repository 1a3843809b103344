"""Model families the seed guide names, built offline from the bundled MiniLM: a StaticEmbedding model, a model saved
with prompts (e5-style), and a CLS-pooling model with its own max_seq_length. Each trains for real on a few rows and
the saved model reloads and measures what the run measured."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from sentence_transformers import SentenceTransformer

from core.config.schema import load_config
from core.evaluation.evaluators import build_evaluator, evaluate
from core.models.choices import model_choices, model_dim
from core.models.encoding import inference_model
from core.models.load import (
    bundled_model_path,
    load_model,
    model_prompts,
    set_attention_dropout,
)
from core.retrieval import compare as cmp
from core.retrieval.search import get_index
from core.training.prepare import split_data
from core.training.run import column_prompts, train
from tests.conftest import copy_bundled, tiny_overrides, write_jsonl

PROMPTS = {"query": "query: ", "document": "passage: "}


@pytest.fixture
def data(tmp_path, sample_pairs):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(r["document"] for r in sample_pairs[100:130]), encoding="utf-8")
    return write_jsonl(tmp_path / "pairs.jsonl", sample_pairs[:24]), corpus


def _train(tmp_path, data, model_dir, **extra):
    pairs, corpus = data
    cfg = load_config(None, tiny_overrides(tmp_path, pairs, model_name=model_dir, corpus_path=corpus, **extra))
    result = train(cfg)
    assert result.state == "finished", result.message
    return cfg, result


def _reload_measures_the_same(cfg, result) -> SentenceTransformer:
    """The saved model, reloaded, gives the run's final metrics on the same split: it is the model measured."""
    model = SentenceTransformer(result.model_dir, device="cpu")
    prep = split_data(cfg)
    evaluator = build_evaluator(prep.test, prep.fmt, prep.corpus, prompts=model_prompts(model, cfg.prompts))
    again = evaluate(model, evaluator)
    assert again.keys() == result.after.keys()
    assert all(abs(again[k] - result.after[k]) < 1e-5 for k in again), (again, result.after)
    run_copy = SentenceTransformer(str(Path(result.run_dir) / "model"), device="cpu")
    texts = ["reset my password", "the printer is jammed"]
    np.testing.assert_allclose(model.encode(texts), run_copy.encode(texts), atol=1e-6)
    return model


def test_static_embedding_trains_mines_searches_compares_and_saves(tmp_path, data):
    from sentence_transformers.sentence_transformer.modules import StaticEmbedding
    from transformers import AutoTokenizer

    static = SentenceTransformer(
        modules=[StaticEmbedding(AutoTokenizer.from_pretrained(bundled_model_path()), embedding_dim=64)], device="cpu"
    )
    base = str(tmp_path / "static")
    static.save(base)
    loaded = load_model(base, max_seq_length=32)  # no tokenizer.model_max_length and no length to set
    assert loaded.max_seq_length == static.max_seq_length
    # A static model learns at a far higher rate than a transformer; keep the trained model, better or not.
    cfg, r = _train(tmp_path, data, base, learning_rate=0.05, num_epochs=2, **{"evaluation.keep_base_if_worse": False})
    assert (Path(r.run_dir) / "mined.parquet").is_file() and r.before and r.after
    model = _reload_measures_the_same(cfg, r)
    assert not np.allclose(model.encode(["reset my password"]), static.encode(["reset my password"]))
    corpus = split_data(cfg).corpus
    hits = get_index(r.model_dir, corpus).search("How do I reset my password?", 3)
    assert len(hits) == 3 and hits[0].score >= hits[-1].score
    both = cmp.search_both("How do I reset my password?", 3, base, r.model_dir, corpus)
    assert len(both["model_a"]) == len(both["model_b"]) == 3
    prep = split_data(cfg)
    assert len(cmp.gold_rank_changes(base, r.model_dir, prep.test, prep.fmt, prep.corpus)) > 0


@pytest.mark.slow
def test_a_model_saved_with_prompts_trains_mines_and_saves_with_them(tmp_path, data, fp32_encoding):
    base_model = load_model(bundled_model_path())
    base_model.prompts = dict(PROMPTS)
    base = str(tmp_path / "e5_like")
    base_model.save(base)
    assert column_prompts(["query", "positive", "negative_1"], {"query": "q: ", "document": "d: "}) == {
        "query": "q: ",
        "positive": "d: ",
        "negative_1": "d: ",
    }
    # The model's own query prompt, and a document prompt from the config's prompts block.
    cfg, r = _train(tmp_path, data, base, **{"prompts.document": "doc: "})
    saved = json.loads((Path(r.model_dir) / "config_sentence_transformers.json").read_text(encoding="utf-8"))
    assert saved["prompts"]["query"] == "query: " and saved["prompts"]["document"] == "doc: "
    assert "query `query: `, document `doc: `" in (Path(r.model_dir) / "README.md").read_text(encoding="utf-8")
    model = _reload_measures_the_same(cfg, r)
    np.testing.assert_allclose(model.encode_query(["reset vpn"]), model.encode(["query: reset vpn"]), atol=1e-6)
    np.testing.assert_allclose(model.encode_document(["a doc"]), model.encode(["doc: a doc"]), atol=1e-6)
    # Mining encoded with the prompts: the recorded positive score is the prompted cosine.
    import pandas as pd

    row = pd.read_parquet(Path(r.run_dir) / "mined.parquet").iloc[0]
    base_model.max_seq_length = cfg.max_seq_length  # the mining model truncates as the config says
    encoder = inference_model(base_model, cfg.encode_precision)  # the weights mining encodes with on this machine
    q, p = encoder.encode(["query: " + row["query"], "doc: " + row["positive"]], normalize_embeddings=True)
    assert abs(float(q @ p) - row["positive_score"]) < 1e-4
    # Search (onnxruntime or torch) embeds queries and documents with the saved prompts.
    index = get_index(r.model_dir, split_data(cfg).corpus)
    assert index.prompts == {"query": "query: ", "document": "doc: "}
    expected = model.encode_query(["reset vpn"], normalize_embeddings=True)
    np.testing.assert_allclose(index._encode("reset vpn"), expected, atol=1e-4)


def test_cls_pooling_model_with_its_own_max_seq_length(tmp_path, data):
    base = copy_bundled(tmp_path / "cls")
    pooling = json.loads((base / "1_Pooling" / "config.json").read_text())
    pooling.update(pooling_mode_cls_token=True, pooling_mode_mean_tokens=False)
    (base / "1_Pooling" / "config.json").write_text(json.dumps(pooling))
    (base / "sentence_bert_config.json").write_text(json.dumps({"max_seq_length": 64, "do_lower_case": False}))
    tok = json.loads((base / "tokenizer_config.json").read_text())
    tok["model_max_length"] = 1000000000000000019884624838656  # unset in the tokenizer: the saved length bounds
    (base / "tokenizer_config.json").write_text(json.dumps(tok))
    assert load_model(str(base)).max_seq_length == 64  # no max_seq_length asked: the model's own
    assert load_model(str(base), max_seq_length=256).max_seq_length == 64  # never above what it is built for
    cfg, r = _train(tmp_path, data, str(base), max_seq_length=48)
    model = _reload_measures_the_same(cfg, r)
    assert model.max_seq_length == 48 and model[1].pooling_mode == "cls"
    assert model_dim(r.model_dir) == 384


def test_model_choices_list_bundled_runs_and_suggestions(tmp_path):
    choices = model_choices(tmp_path / "runs", "sentence-transformers/all-MiniLM-L6-v2", None)
    by_value = {c["value"]: c for c in choices}
    bundled = by_value["sentence-transformers/all-MiniLM-L6-v2"]
    assert bundled["source"] == "bundled" and bundled["dim"] == 384 and bundled["size_mb"] > 50
    assert "guide: fast" in bundled["label"]
    for name, role in (  # every model the guide names, with its role there
        ("sentence-transformers/static-retrieval-mrl-en-v1", "balanced"),
        ("sentence-transformers/stsb-roberta-large", "high quality"),
        ("sentence-transformers/allenai-specter", "biomedical"),
        ("sentence-transformers/legal-roberta-base", "legal"),
        ("sentence-transformers/paraphrase-multilingual-MiniLM-L12-v2", "multilingual"),
    ):
        assert f"guide: {role}" in by_value[name]["label"]
        assert ("needs download" in by_value[name]["label"]) == (not by_value[name]["cached"])
    pairs = cmp.model_choice_pairs(tmp_path / "runs", "sentence-transformers/all-MiniLM-L6-v2", keep=["my/model"])
    assert pairs[-1] == ("my/model", "my/model") and "384-d" in pairs[0][0]


def test_model_choices_find_sentence_transformers_models_in_the_hf_cache(tmp_path):
    hub = tmp_path / "hub"
    for repo, st in (("acme/tiny-st", True), ("acme/plain-bert", False)):
        folder = hub / f"models--{repo.replace('/', '--')}"
        snap = folder / "snapshots" / ("a" * 40)
        (snap / "1_Pooling").mkdir(parents=True)
        (folder / "refs").mkdir()
        (folder / "refs" / "main").write_text("a" * 40)
        (snap / "config.json").write_text(json.dumps({"hidden_size": 96}))
        if st:
            (snap / "modules.json").write_text(
                json.dumps([{"idx": 0, "name": "0", "path": ""}, {"idx": 1, "name": "1", "path": "1_Pooling"}])
            )
            (snap / "1_Pooling" / "config.json").write_text(json.dumps({"word_embedding_dimension": 96}))
    by_value = {c["value"]: c for c in model_choices(None, None, None, hf_cache=hub)}
    assert by_value["acme/tiny-st"]["source"] == "cached" and by_value["acme/tiny-st"]["dim"] == 96
    assert "acme/plain-bert" not in by_value  # not a sentence-transformers model


def test_attention_dropout_is_switched_off_on_attention_probabilities_only():
    import torch

    model = load_model(bundled_model_path(), max_seq_length=32)
    layers = model[0].auto_model.config.num_hidden_layers
    features = model.tokenize(["reset my password", "the printer on floor two is offline again"])
    model.train()

    def twice() -> bool:
        with torch.no_grad():
            a, b = (model(dict(features))["token_embeddings"] for _ in range(2))
        return torch.equal(a, b)

    others = [m for n, m in model.named_modules() if isinstance(m, torch.nn.Dropout) and "attention.self" not in n]
    for m in others:
        m.p = 0.0  # leave attention dropout as the only randomness
    assert not twice(), "MiniLM drops attention probabilities while training"
    assert set_attention_dropout(model, 0.0) == layers
    assert twice(), "with attention dropout 0 a training-mode forward is deterministic"
    assert set_attention_dropout(model, 0.1) == layers and not twice()

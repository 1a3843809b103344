"""core/retrieval/compare.py with real models: the bundled MiniLM as model A, and as model B the same weights reading only
their first 12 tokens (a genuinely different model directory, made in a second instead of trained)."""

from __future__ import annotations

import time
import zipfile
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from core.config.schema import DEFAULT_MODEL, build_config
from core.export import archive as export
from core.retrieval import compare as cmp
from core.runs.folders import runs_frame
from tests.conftest import write_jsonl


def make_short_model(path: Path, max_seq_length: int = 12) -> str:
    from sentence_transformers import SentenceTransformer

    from core.models.load import bundled_model_path

    model = SentenceTransformer(bundled_model_path(), local_files_only=True)
    model.max_seq_length = max_seq_length
    model.save(str(path))
    (path / "README.md").write_text("---\ntags: [test]\n---\n# Short MiniLM\nFor tests.\n", encoding="utf-8")
    return str(path)


@pytest.fixture(scope="module", params=["fp32", "bf16"])
def env(request, tmp_path_factory, sample_pairs):
    """Each test runs under both encode precisions, whichever this machine's probe would pick: the Compare tab's
    numbers must agree with the evaluator's either way."""
    from core.models import encoding

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(encoding, "decide", lambda model: {"bf16": request.param == "bf16", "train_bf16": False})
        yield _env(tmp_path_factory.mktemp(f"compare_{request.param}"), sample_pairs)


def _env(tmp: Path, sample_pairs) -> SimpleNamespace:
    dataset = write_jsonl(tmp / "pairs.jsonl", sample_pairs[:40])
    cfg = build_config(
        {
            "dataset_path": str(dataset),
            "test_size": 0.25,
            "cache_dir": str(tmp / "cache"),
            "runs_dir": str(tmp / "runs"),
        }
    )
    data = cmp.evaluation_data(cfg)
    short = make_short_model(tmp / "short")
    changes = cmp.gold_rank_changes(DEFAULT_MODEL, short, data.test, data.fmt, data.corpus, cfg.cache_dir)
    return SimpleNamespace(tmp=tmp, cfg=cfg, data=data, short=short, changes=changes)


def test_evaluation_data_is_the_training_split(env):
    from core.training.prepare import load_and_split

    (env.tmp / "split_check").mkdir(exist_ok=True)
    prep = load_and_split(env.cfg, env.tmp / "split_check")
    assert list(prep.test["query"]) == list(env.data.test["query"])
    assert prep.corpus == env.data.corpus
    assert len(env.data.test) == 10


def test_gold_ranks_agree_with_the_search_index(env):
    ch = env.changes
    assert len(ch) == env.data.test["query"].nunique()
    assert ch["change"].tolist() == (ch["rank_a"] - ch["rank_b"]).tolist()
    assert (ch["rank_a"] != ch["rank_b"]).any(), "truncating to 12 tokens should move some gold documents"
    for side, model in (("a", DEFAULT_MODEL), ("b", env.short)):
        index = cmp.get_index(model, env.data.corpus, env.cfg.cache_dir)
        for q, rank in list(zip(ch["query"], ch[f"rank_{side}"], strict=True))[:5]:  # rank_of encodes one by one
            expected = min(index.rank_of(q, d) for d in env.data.gold_for(q))
            assert rank == expected, (side, q)


def test_improved_and_worsened_are_ordered(env):
    up, down = cmp.improved_and_worsened(env.changes, n=3)
    assert len(up) <= 3 and len(down) <= 3
    assert (up["change"] > 0).all() and (down["change"] < 0).all()
    assert up["change"].tolist() == sorted(up["change"], reverse=True)
    assert down["change"].tolist() == sorted(down["change"])
    assert len(up) == min(3, int((env.changes["change"] > 0).sum()))


def test_metrics_from_ranks_match_the_ir_evaluator(env):
    from core.evaluation.evaluators import build_evaluator, evaluate
    from core.models.load import shared_model

    table = cmp.metrics_frame(env.changes, env.data.fmt).set_index("metric")
    expected = evaluate(shared_model(env.short), build_evaluator(env.data.test, env.data.fmt, env.data.corpus))
    for metric in ("ndcg@10", "mrr@10", "accuracy@1", "recall@10", "map@100"):
        assert table.loc[metric, "model B"] == pytest.approx(expected[metric], abs=1e-3), metric
    assert cmp.ir_metrics([[1], [3], [11]])["mrr@10"] == pytest.approx((1 + 1 / 3 + 0) / 3)
    assert cmp.ir_metrics([[2, 5]])["recall@10"] == 1.0


def test_search_both_marks_gold_and_rank_changes(env):
    q = env.data.test["query"].iloc[0]
    out = cmp.search_both(q, 5, DEFAULT_MODEL, env.short, env.data.corpus, env.data.gold_for(q), env.cfg.cache_dir)
    for side in ("model_a", "model_b"):
        hits = out[side]
        assert [h["rank"] for h in hits] == [1, 2, 3, 4, 5]
        assert all(set(h) >= {"rank", "score", "text", "gold", "other_rank", "change"} for h in hits)
        for h in hits:
            d = h["other_rank"] - h["rank"]
            assert h["change"] == (f"▲{d}" if d > 0 else f"▼{-d}" if d < 0 else "=")
        assert all(h["gold"] == (h["text"] in env.data.gold_for(q)) for h in hits)
    row = env.changes.set_index("query").loc[q]
    assert out["gold_rank"] == {"model_a": row["rank_a"], "model_b": row["rank_b"]}


def test_similarity_under_both_models():
    out = cmp.compare_similarity(
        "reset my password", "forgot my login password\nthe printer is jammed", DEFAULT_MODEL, DEFAULT_MODEL
    )
    assert len(out["model_a"]) == len(out["model_b"]) == len(out["delta"]) == 2
    assert out["model_a"][0] > out["model_a"][1]
    assert out["delta"] == pytest.approx([0.0, 0.0], abs=1e-6)


@pytest.mark.parametrize("name", ["outputs/embedding_model_missing", "/no/such/model", ""])
def test_missing_model_says_what_to_do(name):
    with pytest.raises(cmp.CompareError, match="train a model first or pick a model directory"):
        cmp.compare_similarity("a", "b", DEFAULT_MODEL, name)


def test_a_dotted_hub_id_is_looked_up_on_the_hub(unreachable_hub):
    with pytest.raises(cmp.CompareError, match="could not be found. Tried the local Hugging Face cache"):
        cmp.check_model("BAAI/bge-small-en-v1.5")


def test_export_zip_unzips_to_a_loadable_model(env):
    from sentence_transformers import SentenceTransformer

    path = export.export_zip(env.short, env.tmp / "exports")
    folder = Path(env.short).name
    with zipfile.ZipFile(path) as zf:
        names = zf.namelist()
        assert {n.split("/")[0] for n in names} == {folder}  # one top-level folder named after the model
        assert f"{folder}/modules.json" in names and f"{folder}/README.md" in names
        zf.extractall(env.tmp / "unzipped")
    loaded = SentenceTransformer(str(env.tmp / "unzipped" / folder), local_files_only=True)
    original = SentenceTransformer(env.short, local_files_only=True)
    text = ["How do I reset my password?"]
    assert np.allclose(loaded.encode(text), original.encode(text), atol=1e-6)
    assert loaded.max_seq_length == 12
    assert "Short MiniLM" in export.read_model_card(env.short)
    with pytest.raises(cmp.CompareError, match="train a model first"):
        export.export_zip(env.tmp / "nothing", env.tmp / "exports")


def test_hub_push_offline_is_fast_and_clear(env, monkeypatch, unreachable_hub):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)  # really try: the hub's endpoint is a closed local port
    start = time.time()
    with pytest.raises(export.HubError) as err:
        export.push_to_hub(env.short, "someone/test-model", "hf_not_a_real_token")
    assert time.time() - start < 10
    assert "nothing was pushed" in str(err.value) and "offline" in str(err.value).lower()
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(export.HubError, match="HF_HUB_OFFLINE"):
        export.push_to_hub(env.short, "someone/test-model", "hf_x")
    with pytest.raises(export.HubError, match="user-or-org/model-name"):
        export.push_to_hub(env.short, "not a repo", "hf_x")
    with pytest.raises(export.HubError, match="token"):
        export.push_to_hub(env.short, "someone/test-model", "")


def test_model_choices_and_runs_frame(env, tmp_path):
    from core.runs.events import EventWriter

    run = tmp_path / "runs" / "20260101-000000-train-x"
    (run / "model").mkdir(parents=True)
    (run / "model" / "modules.json").write_text("[]", encoding="utf-8")  # what marks a folder as a model
    EventWriter(run / "events.jsonl").emit("finished", model_dir=str(run / "model"))
    (run / "metrics.json").write_text('{"before": {"ndcg@10": 0.5}, "after": {"ndcg@10": 0.7}}', encoding="utf-8")
    choices = cmp.model_choices(tmp_path / "runs", DEFAULT_MODEL, env.short)
    assert choices == [DEFAULT_MODEL, env.short, str(run / "model")]
    df = runs_frame(tmp_path / "runs")
    assert df.iloc[0]["run"] == run.name and df.iloc[0]["state"] == "finished"
    assert (df.iloc[0]["before"], df.iloc[0]["after"]) == (0.5, 0.7)


def test_queries_reuse_their_index_encoder(env, monkeypatch):
    """Each query encodes with the encoder its index was built with: a fresh bf16 copy per query (a deep copy of the
    model, ~100 ms) made the Compare tab's search 5x slower than its target."""
    from core.models import encoding

    copies = []
    real = encoding._bf16_copy
    monkeypatch.setattr(encoding, "_bf16_copy", lambda model: copies.append(model) or real(model))
    corpus = env.data.corpus[:-1]  # indexes not built yet
    for query in ("sore throat for a week", "how do I reset my password", "fever in a child"):
        out = cmp.search_both(query, 3, DEFAULT_MODEL, env.short, corpus)
        assert len(out["model_a"]) == len(out["model_b"]) == 3
    bf16 = [cmp.get_index(m, corpus).precision == "bf16" for m in (DEFAULT_MODEL, env.short)]
    assert len(copies) == sum(bf16)  # one per index, made when it was built

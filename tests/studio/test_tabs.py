"""Negatives, Compare and Export tabs: their handlers as plain functions on real mined data, and the stable
compare endpoints through gradio_client against the launched studio."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest

from core.config.schema import DEFAULT_MODEL, ConfigError, build_config
from core.training.mining import load_exclusions
from studio.tabs import compare as compare_tab
from studio.tabs import export as export_tab
from studio.tabs import negatives as neg
from tests.conftest import SAMPLES, write_jsonl

SORT = "hardest first (smallest gap)"


@pytest.fixture(scope="module")
def mined(tmp_path_factory, sample_pairs) -> SimpleNamespace:
    """A "mine" run of 40 real pairs with the bundled model (16 tokens: mining takes seconds)."""
    tmp = tmp_path_factory.mktemp("negatives")
    dataset = write_jsonl(tmp / "pairs.jsonl", sample_pairs[:40])
    config = build_config(
        {
            "dataset_path": str(dataset),
            "test_size": 0.25,
            "max_seq_length": 16,
            "cache_dir": str(tmp / "cache"),
            "runs_dir": str(tmp / "runs"),
            "mining": {"num_negatives": 2, "margin": None},
        }
    ).to_dict()
    state = neg.mine_now(config, None, tmp / "runs")
    return SimpleNamespace(tmp=tmp, config=config, state=state, workspace=tmp / "workspace")


def test_mine_now_writes_a_mine_run(mined):
    run = Path(mined.state["run"])
    assert "-mine-" in run.name and (run / "mined.parquet").exists() and (run / "config.yaml").exists()
    rows = mined.state["rows"]
    assert len(rows) == mined.state["stats"]["negatives"] > 0
    assert set(rows["query"]) <= {
        p["query"] for p in pd.read_json(mined.config["dataset_path"], lines=True).to_dict("records")
    }
    again = neg.load_run(str(run))
    assert len(again["rows"]) == len(rows) and again["config"]["mining"]["num_negatives"] == 2


def test_filter_sort_and_suspects(mined):
    table, line = neg.view(mined.state, "", False, SORT, mined.config)
    assert list(table.columns) == neg.SHOWN and not table["exclude"].any()
    assert table["gap"].tolist() == sorted(table["gap"])
    assert f"showing {len(table)} of {len(mined.state['rows'])}" in line
    word = mined.state["rows"]["query"].iloc[0].split()[-1]
    hits, _ = neg.view(mined.state, word.upper(), False, SORT, mined.config)
    assert 0 < len(hits) < len(table)
    assert all(word.lower() in " ".join(r).lower() for r in hits[["query", "positive", "negative"]].values)
    suspects, _ = neg.view(mined.state, "", True, SORT, mined.config)
    assert len(suspects) == int(mined.state["rows"]["suspected_false_negative"].sum())
    assert suspects["suspected"].all()
    by_score, _ = neg.view(mined.state, "", False, "negative score, high first", mined.config)
    assert by_score["negative_score"].tolist() == sorted(by_score["negative_score"], reverse=True)


def test_exclusions_are_saved_in_the_config_and_honoured_by_remining(mined):
    table, _ = neg.view(mined.state, "", False, SORT, mined.config)
    table = table.assign(exclude=[True, True] + [False] * (len(table) - 2))
    config, msg = neg.save_exclusions(table, mined.config, mined.workspace)
    path = Path(config["mining"]["exclude_path"])
    assert path.is_relative_to(mined.workspace.resolve()) and "2 shown negatives excluded" in msg
    pairs = set(zip(table["query"][:2], table["negative"][:2], strict=True))
    assert load_exclusions(str(path)) == pairs
    shown, _ = neg.view(mined.state, "", False, SORT, config)
    assert shown["exclude"].sum() == 2  # ticks reflect the saved exclusions
    config, _ = neg.save_exclusions(shown.assign(exclude=[True] + [False] * (len(shown) - 1)), config, mined.workspace)
    assert len(load_exclusions(str(path))) == 1
    preview, _ = neg.preview(mined.state, config, None, neg.thresholds(None, "relative", 0, 50, 2))
    kept = set(zip(preview["rows"]["query"], preview["rows"]["negative"], strict=True))
    assert not kept & load_exclusions(str(path)) and preview["stats"]["excluded"] == 1
    cleared, _ = neg.clear_exclusions(config)
    assert cleared["mining"]["exclude_path"] is None


def test_remine_preview_uses_the_cache_and_counts_skips(mined):
    cache_files = sorted(Path(mined.config["cache_dir"]).rglob("*.npy"))
    loose, _ = neg.preview(mined.state, mined.config, None, neg.thresholds(None, "relative", 0, 50, 2))
    strict, stats = neg.preview(mined.state, mined.config, None, neg.thresholds(0.3, "absolute", 0, 50, 2))
    assert sorted(Path(mined.config["cache_dir"]).rglob("*.npy")) == cache_files  # nothing re-encoded
    assert loose["stats"]["skipped_by_margin"] == 0 < strict["stats"]["skipped_by_margin"]
    assert strict["preview"] and strict["config"]["mining"]["margin"] == 0.3
    row = stats.set_index("stat").loc["skipped_by_margin"]
    assert row["preview"] == strict["stats"]["skipped_by_margin"] and row["change"] == row["preview"] - row["current"]
    assert (strict["rows"]["gap"] >= 0.3 - 1e-6).all()


def test_use_thresholds_validates(mined):
    config, msg = neg.use_thresholds(mined.config, neg.thresholds(0.1, "absolute", 2, 20, 4))
    wanted = {"margin": 0.1, "margin_type": "absolute", "range_min": 2, "range_max": 20, "num_negatives": 4}
    assert {k: config["mining"][k] for k in wanted} == wanted and "num_negatives=4" in msg
    with pytest.raises(ConfigError, match="range_max"):
        neg.use_thresholds(mined.config, neg.thresholds(None, "relative", 10, 5, 1))


def test_scored_data_has_nothing_to_mine(mined):
    config = dict(mined.config, dataset_path=str(SAMPLES / "it_helpdesk_scored.csv"))
    before = sorted((mined.tmp / "runs").iterdir())
    with pytest.raises(ValueError, match="no negatives to mine"):
        neg.mine_now(config, None, mined.tmp / "runs")
    with pytest.raises(ValueError, match="Nothing to mine"):
        neg.mine_now(dict(mined.config, mining=dict(mined.config["mining"], enabled=False)), None, mined.tmp / "runs")
    assert sorted((mined.tmp / "runs").iterdir()) == before  # a refusal leaves no empty run folder


def test_history_and_open_run(mined):
    runs = mined.tmp / "runs"
    df = export_tab.history(runs)
    run_id = Path(mined.state["run"]).name
    assert run_id in set(df["run"]) and df.set_index("run").loc[run_id, "kind"] == "mine"
    run_dir, config, line = export_tab.open_run(run_id, runs)
    assert run_dir == mined.state["run"] and config == mined.state["config"] and run_id in line
    with pytest.raises(ValueError, match="No run"):
        export_tab.open_run("nope", runs)
    assert "train a model first" in export_tab.model_card(str(mined.tmp / "missing"))


# ---- through gradio_client, on the launched studio (tests/studio/conftest.py) ----


@pytest.fixture(scope="module")
def own_client(studio, tmp_path_factory, sample_pairs):
    """A client session of its own whose dataset is 30 pairs, so indexing takes seconds and other tests' sessions
    keep the default dataset."""
    from gradio_client import Client, handle_file

    path = write_jsonl(tmp_path_factory.mktemp("api") / "small.jsonl", sample_pairs[:30])
    c = Client(studio[1], verbose=False)
    report = c.predict(handle_file(str(path)), api_name="/validate_dataset")
    assert report["ok"] and report["selected"], report
    yield c, path
    c.close()


def test_compare_similarity_endpoint(client):
    out = client.predict(
        "reset my password",
        "forgot my login password\nthe printer is jammed",
        DEFAULT_MODEL,
        DEFAULT_MODEL,
        api_name="/compare_similarity",
    )
    assert len(out["model_a"]) == len(out["model_b"]) == len(out["delta"]) == 2
    assert out["model_a"][0] > out["model_a"][1] and out["delta"] == pytest.approx([0, 0], abs=1e-6)


def test_compare_search_endpoint_marks_gold(own_client):
    c, path = own_client
    data = compare_tab.cmp.evaluation_data(build_config({"dataset_path": str(path), "test_size": 0.2}))
    query = data.test["query"].iloc[0]
    out = c.predict(query, 3, DEFAULT_MODEL, DEFAULT_MODEL, api_name="/compare_search")
    assert len(out["model_a"]) == len(out["model_b"]) == 3
    assert out["split"] == "test" and out["corpus"]["size"] == len(data.corpus)
    assert out["gold_rank"]["model_a"] == out["gold_rank"]["model_b"] >= 1
    for hit in out["model_a"]:
        assert hit["gold"] == (hit["text"] in data.gold_for(query)) and hit["change"] == "="


def test_missing_model_is_a_clear_message(client):
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError, match="train a model first or pick a model directory"):
        client.predict("a", "b", DEFAULT_MODEL, "outputs/no_such_model", api_name="/compare_similarity")

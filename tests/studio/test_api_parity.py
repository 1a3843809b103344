"""What a script needs to do what the page does, through gradio_client: set the session's config (as the form and
the YAML editor do), attach a corpus (as the Data tab does), list the pickers' models, see runs side by side; and
readable parameter names on every endpoint. Each test opens its own client: its own session."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from gradio_client import Client, handle_file

from core.config.schema import DEFAULT_MODEL

SAMPLE = Path(__file__).resolve().parents[2] / "assets" / "samples" / "it_helpdesk_pairs.jsonl"


@pytest.fixture()
def fresh(studio) -> Iterator[Client]:
    c = Client(studio[1], verbose=False)
    yield c
    c.close()


def test_every_parameter_has_a_readable_name(fresh) -> None:
    endpoints = fresh.view_api(print_info=False, return_format="dict")["named_endpoints"]
    assert {
        "/set_config",
        "/load_config",
        "/current_config",
        "/attach_corpus",
        "/model_choices",
        "/compare_runs",
    } <= set(endpoints)
    for name, info in endpoints.items():
        for p in info["parameters"]:
            words = p["parameter_name"]
            assert re.fullmatch(r"[a-z][a-z0-9]*(_[a-z0-9]+)*", words), (name, words)
            assert len(words) >= 3 or words in {"k", "n"}, (name, words)  # top-k and n rows are the usual words


def test_set_config_applies_a_mapping_and_refuses_bad_values(fresh) -> None:
    before = fresh.predict(api_name="/current_config")
    done = fresh.predict({"num_epochs": 2, "mining.num_negatives": 1}, api_name="/set_config")
    assert done["ok"] and done["errors"] == []
    now = fresh.predict(api_name="/current_config")
    assert now["num_epochs"] == 2 and now["mining"]["num_negatives"] == 1
    assert now["learning_rate"] == before["learning_rate"]  # the rest stays as the session had it
    as_text = fresh.predict("learning_rate: 1.0e-5\nprompts: {query: 'query: '}", api_name="/set_config")
    assert as_text["ok"], as_text
    assert as_text["config"]["prompts"]["query"] == "query: " and as_text["config"]["num_epochs"] == 2
    refused = fresh.predict({"batch_size": 0, "mining.margin": "wide"}, api_name="/set_config")
    assert not refused["ok"] and refused["config"] is None
    assert any(e.startswith("batch_size") for e in refused["errors"])
    assert any(e.startswith("mining.margin") for e in refused["errors"])
    assert fresh.predict(api_name="/current_config") == as_text["config"]  # a refusal changes nothing
    preset = fresh.predict({"preset": "quality"}, api_name="/set_config")
    assert preset["ok"] and preset["config"]["num_epochs"] == 2  # chosen by the session: the preset keeps it
    assert (preset["config"]["learning_rate"], preset["config"]["mining"]["num_negatives"]) == (1e-5, 2)


def test_load_config_takes_a_whole_yaml_with_defaults_for_the_rest(fresh) -> None:
    fresh.predict({"num_epochs": 3}, api_name="/set_config")
    loaded = fresh.predict("model_name: " + DEFAULT_MODEL + "\nbatch_size: 16\n", api_name="/load_config")
    assert loaded["ok"], loaded
    assert loaded["config"]["batch_size"] == 16 and loaded["config"]["num_epochs"] == 1  # the default, not 3
    bad = fresh.predict("batch_size: [1, 2\n", api_name="/load_config")
    assert not bad["ok"] and "line" in bad["errors"][0]
    assert fresh.predict(api_name="/current_config")["batch_size"] == 16


def test_attach_corpus_selects_it_and_a_refused_file_keeps_the_last(fresh, tmp_path: Path) -> None:
    corpus = tmp_path / "more docs.jsonl"
    corpus.write_text("".join(json.dumps({"text": f"Document number {i} about printers."}) + "\n" for i in range(12)))
    done = fresh.predict(handle_file(str(corpus)), api_name="/attach_corpus")
    assert done["ok"] and done["documents"] == 12 and done["corpus"] == "more_docs.jsonl", done
    assert fresh.predict(api_name="/current_config")["corpus_path"].endswith("more_docs.jsonl")
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"text": "fine"}\nnot json at all\n')
    refused = fresh.predict(handle_file(str(broken)), api_name="/attach_corpus")
    assert not refused["ok"] and refused["corpus"] == "more_docs.jsonl" and "line 2" in refused["message"]
    assert fresh.predict(api_name="/current_config")["corpus_path"].endswith("more_docs.jsonl")
    cleared = fresh.predict(None, api_name="/attach_corpus")
    assert cleared["ok"] and fresh.predict(api_name="/current_config")["corpus_path"] is None


def test_model_choices_lists_what_the_pickers_offer(fresh) -> None:
    models = fresh.predict(api_name="/model_choices")["models"]
    values = [m["value"] for m in models]
    assert DEFAULT_MODEL in values and all(m["label"] for m in models)
    # a listed value is usable as a model on the page's endpoints
    scores = fresh.predict(
        "reset my password", "change a forgotten password", DEFAULT_MODEL, values[0], api_name="/compare_similarity"
    )
    assert len(scores["model_a"]) == 1 and len(scores["model_b"]) == 1


@pytest.mark.slow
def test_runs_side_by_side(fresh, studio_dirs: Path, tmp_path: Path) -> None:
    """Two short trainings that differ in learning rate: their curves overlay and the difference is listed."""
    common = {"num_epochs": 1, "batch_size": 8, "max_seq_length": 32, "sample_size": 40, "test_size": 0.2}
    assert fresh.predict(common | {"mining.num_negatives": 0, "evaluation.eval_steps": 2}, api_name="/set_config")["ok"]
    runs = []
    for lr in (5e-5, 1e-4):
        overrides = {"learning_rate": lr, "output_dir": str(tmp_path / f"model-{lr}")}
        started = fresh.predict(overrides, api_name="/start_training")
        assert "error" not in started, started
        deadline = time.time() + 300
        while fresh.predict(api_name="/training_status")["state"] in ("running", "queued") and time.time() < deadline:
            time.sleep(2)
        runs.append(started["run_id"])
        ran = yaml.safe_load((Path(started["run_dir"]) / "config.yaml").read_text(encoding="utf-8"))
        assert {k: ran[k] for k in common} == common  # the session's config, set through the API, is what ran
    out = fresh.predict(runs, None, api_name="/compare_runs")
    assert "error" not in out, out
    assert out["metric"] == "ndcg@10" and [r["run"] for r in out["runs"]] == runs
    assert all(r["baseline"] is not None and r["last"] is not None for r in out["runs"])
    lr_row = next(d for d in out["differences"] if d["key"] == "learning_rate")
    assert {lr_row[runs[0]], lr_row[runs[1]]} == {"5e-05", "0.0001"}
    assert not any(d["key"] == "batch_size" for d in out["differences"])
    other = fresh.predict(runs, "mrr@10", api_name="/compare_runs")
    assert other["metric"] == "mrr@10"
    assert "two or more" in fresh.predict(runs[:1], None, api_name="/compare_runs")["error"]
    assert (
        "No such run"
        in fresh.predict([runs[0], "20990101-000000-train-nothing"], None, api_name="/compare_runs")["error"]
    )

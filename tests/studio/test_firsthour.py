"""A new user's first hour through the API: a time estimate before Start, honest phases while the run goes, a
warning when the test split is too small to show a difference. Real trainings of the bundled MiniLM on 40 pairs."""

from __future__ import annotations

import json
import time
import zipfile
from pathlib import Path

import pytest
from gradio_client import handle_file

from core.runs.progress import PHASES
from tests.studio.test_api import SAMPLE, tiny

LABELS_BEFORE_TRAINING = ("loading", "mining", "baseline", "preparing data")


def _pairs(path: Path, n: int = 40) -> Path:
    path.write_text("".join(SAMPLE.read_text(encoding="utf-8").splitlines(keepends=True)[:n]), encoding="utf-8")
    return path


@pytest.mark.slow
def test_estimate_then_a_run_with_phases_and_a_small_split_warning(client, tmp_path: Path) -> None:
    assert client.predict(handle_file(str(_pairs(tmp_path / "pairs40.jsonl"))), api_name="/validate_dataset")[
        "selected"
    ]
    overrides = tiny(tmp_path)
    est = client.predict(overrides, api_name="/estimate_training")
    assert "error" not in est, est
    assert list(est["phases"]) == PHASES and est["total_s"] > 0 and est["phases"]["training"] > 0
    assert est["plan"]["test_queries"] == 8 and "test split has only 8 queries" in est["warnings"][0]

    started = client.predict(overrides, api_name="/start_training")
    assert "error" not in started, started
    seen = []
    deadline = time.time() + 300
    while time.time() < deadline:
        status = client.predict(api_name="/training_status")
        seen.append((status["step"], status["phase"]))
        if status["state"] != "running":
            break
        time.sleep(0.5)
    assert status["state"] == "finished", status
    # Once a step has run, the status never claims an earlier phase (it said "evaluating baseline" for a while).
    assert not [p for step, p in seen if step >= 1 and p.startswith(LABELS_BEFORE_TRAINING)], seen
    assert status["estimate"]["phases"]["training"] > 0  # the probe measured above is reused by the run
    assert set(status["phase_times"]) == set(PHASES)
    assert any("test split has only 8 queries" in w and "test_size" in w for w in status["warnings"])
    metrics_warnings = (Path(started["run_dir"]) / "metrics.json").read_text()
    assert "test split has only 8 queries" in metrics_warnings


@pytest.mark.slow
def test_open_run_brings_back_its_dataset(client, tmp_path: Path) -> None:
    from tests.studio.test_api import wait_for

    data = _pairs(tmp_path / "my_questions.jsonl", 36)
    assert client.predict(handle_file(str(data)), api_name="/validate_dataset")["selected"]
    started = client.predict(tiny(tmp_path, **{"mining.num_negatives": 0}), api_name="/start_training")
    assert "error" not in started, started
    assert wait_for(client, lambda s: s["state"] != "running", timeout=300)["state"] == "finished"
    # The session moves on to another dataset; opening the run selects the run's data again.
    assert client.predict(handle_file(str(SAMPLE)), api_name="/validate_dataset")["selected"]
    client.predict(started["run_id"], api_name="/open_run")
    current = client.predict(api_name="/current_dataset")
    assert Path(current["dataset_path"]).name == "my_questions.jsonl" and current["rows"] == 36

    # The export: one top-level folder named after the model, a card whose example uses this data's texts.
    status = client.predict(api_name="/training_status")
    zip_path, message = client.predict(status["model_dir"], api_name="/export_zip")
    with zipfile.ZipFile(zip_path) as zf:
        tops = {n.split("/")[0] for n in zf.namelist()}
        card = zf.read(f"{next(iter(tops))}/README.md").decode("utf-8")
    assert len(tops) == 1 and f"`{next(iter(tops))}/`" in message and " MB)" in message
    usage = next(line for line in card.splitlines() if "model.encode([" in line)
    texts = json.loads(usage.split("model.encode(", 1)[1].rsplit(")", 1)[0])
    rows = [json.loads(line) for line in data.read_text(encoding="utf-8").splitlines()]
    assert any(r["query"] == texts[0] and r["document"].startswith(texts[1].rstrip("…")) for r in rows), texts


def test_a_reload_restores_the_runs_data_and_config(tmp_path: Path) -> None:
    """What the page load does (train.attach): the shown run's dataset, corpus and config come back."""
    from core.config.schema import build_config
    from studio.run_view import restore_run_data

    data = _pairs(tmp_path / "mine.jsonl", 30)
    corpus = tmp_path / "extra.txt"
    corpus.write_text("a distractor document\nanother one\n", encoding="utf-8")
    run = tmp_path / "runs" / "r1"
    run.mkdir(parents=True)
    build_config({"dataset_path": str(data), "corpus_path": str(corpus), "test_size": 0.3}).save(run / "config.yaml")
    session = build_config({"runs_dir": str(tmp_path / "studio_runs")}).to_dict()
    sample = {"path": str(SAMPLE), "format": "pairs", "rows": 258, "report": {}}
    dataset, config = restore_run_data(str(run), sample, session)
    assert dataset["path"].endswith("mine.jsonl") and dataset["rows"] == 30 and dataset["report"]["ok"]
    assert config["corpus_path"] == str(corpus) and config["test_size"] == 0.3
    assert config["runs_dir"] == session["runs_dir"]  # the studio's own runs folder stays
    data.unlink()  # the file is gone: nothing is restored, nothing breaks
    assert restore_run_data(str(run), sample, session) == (sample, session)

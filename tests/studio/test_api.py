"""The studio's script API through gradio_client: validate -> start -> poll -> finished, queue, stop, refusals.

Real trainings of the bundled MiniLM on 40 pairs (a few steps each); nothing is mocked.
"""

from __future__ import annotations

import json
import shlex
import time
import zipfile
from pathlib import Path

import pytest
from gradio_client import Client, handle_file

from core.config.schema import load_config

SAMPLE = Path(__file__).resolve().parents[2] / "assets" / "samples" / "it_helpdesk_pairs.jsonl"
ENDPOINTS = {"/validate_dataset", "/current_dataset", "/start_training", "/training_status", "/stop_training"}


def tiny(tmp: Path, **extra) -> dict:
    """Overrides for a training of a few steps (eval every 2 steps keeps evaluations and checkpoints few)."""
    return {
        "max_seq_length": 64,
        "batch_size": 8,
        "mining.num_negatives": 1,
        "num_epochs": 1,
        "test_size": 0.2,
        "evaluation.eval_steps": 2,
        "output_dir": str(tmp / "model"),
        "cache_dir": str(tmp / "cache"),
        **extra,
    }


def wait_for(client, done, timeout: float, every: float = 1.0) -> dict:
    deadline = time.time() + timeout
    while True:
        status = client.predict(api_name="/training_status")
        if done(status) or time.time() > deadline:
            return status
        time.sleep(every)


@pytest.fixture(scope="module")
def pairs40(studio_dirs: Path) -> Path:
    path = studio_dirs / "pairs40.jsonl"
    path.write_text("".join(SAMPLE.read_text(encoding="utf-8").splitlines(keepends=True)[:40]), encoding="utf-8")
    return path


def test_endpoints_are_named(client) -> None:
    names = set(client.view_api(print_info=False, return_format="dict")["named_endpoints"])
    assert ENDPOINTS <= names


def test_starts_on_the_sample(studio) -> None:
    """A fresh client is a fresh session: what other tests uploaded through the shared client cannot show here."""
    fresh = Client(studio[1], verbose=False)
    try:
        current = fresh.predict(api_name="/current_dataset")
    finally:
        fresh.close()
    assert current["dataset_path"].endswith("it_helpdesk_pairs.jsonl")
    assert current["format"] == "pairs" and current["rows"] == 258


def test_validate_sample(client) -> None:
    report = client.predict(handle_file(str(SAMPLE)), api_name="/validate_dataset")
    assert report["ok"] and report["selected"]
    assert report["format"] == "pairs" and report["rows"] == 258
    assert report["stats"]["token_lengths"]["document"]["max_seq_length"] == 256


def test_invalid_file_is_refused_and_previous_dataset_stays(client, studio_dirs: Path) -> None:
    before = client.predict(api_name="/current_dataset")
    bad = studio_dirs / "bad pairs!.jsonl"
    bad.write_text(
        '{"query": "vpn", "document": "Use the VPN client."}\n{"query": "", "document": "x"}\nnot json\n',
        encoding="utf-8",
    )
    report = client.predict(handle_file(str(bad)), api_name="/validate_dataset")
    assert not report["ok"] and not report["selected"]
    errors = {(e["line"], e["field"]) for e in report["errors"]}
    assert (2, "query") in errors
    assert any(e["line"] == 3 and "JSON" in e["message"] for e in report["errors"])
    after = client.predict(api_name="/current_dataset")
    assert after["dataset_path"] == before["dataset_path"]
    assert not list(studio_dirs.glob("workspace/uploads/*/bad*"))  # a refused file is never stored


def test_upload_is_stored_with_a_sanitised_name(client, studio_dirs: Path) -> None:
    odd = studio_dirs / "my data (v2).jsonl"
    odd.write_text(SAMPLE.read_text(encoding="utf-8"), encoding="utf-8")
    report = client.predict(handle_file(str(odd)), api_name="/validate_dataset")
    stored = Path(report["dataset_path"])
    assert report["selected"] and stored.name == "my_data_v2.jsonl"
    assert stored.is_relative_to(studio_dirs / "workspace" / "uploads") and stored.is_file()


def test_bad_overrides_are_refused(client) -> None:
    result = client.predict({"batch_size": 0, "mining.num_negatives": "many"}, api_name="/start_training")
    assert result["busy"] is False
    assert any(e.startswith("batch_size") for e in result["errors"])
    assert any(e.startswith("mining.num_negatives") for e in result["errors"])


@pytest.mark.slow
def test_train_until_finished(client, pairs40: Path, studio_dirs: Path, tmp_path: Path) -> None:
    assert client.predict(handle_file(str(pairs40)), api_name="/validate_dataset")["selected"]
    started = client.predict(json.dumps(tiny(tmp_path)), api_name="/start_training")  # JSON text works too
    assert "error" not in started, started
    assert Path(started["run_dir"]).parent == studio_dirs / "runs"
    status = wait_for(client, lambda s: s["state"] not in ("running", "idle"), timeout=300)
    assert status["state"] == "finished", status
    assert status["run_id"] == started["run_id"]
    assert status["step"] == status["max_steps"] and status["step"] > 0
    assert {"ndcg@10", "mrr@10", "accuracy@1"} <= set(status["after"]) and status["before"]
    assert Path(started["run_dir"], "data.json").is_file()
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(status["model_dir"], device="cpu")
    assert model.encode(["my laptop will not boot"]).shape == (1, 384)
    # the run downloads with its weights when asked; locally its record keeps the real command and folder
    zipped, line = client.predict(started["run_id"], True, api_name="/download_run")
    assert "the model's weights" in line
    with zipfile.ZipFile(zipped) as zf:
        names = zf.namelist()
        record = json.loads(zf.read(f"{started['run_id']}/record.json"))
    assert any(n.endswith("/model/model.safetensors") for n in names)
    assert record["command"]["via"] == "studio" and record["versions"]["sentence-transformers"]
    assert client.predict("", False, api_name="/download_run")[1].startswith("⚠️ Pick a run first")


@pytest.mark.slow
def test_second_start_waits_in_the_queue_then_cancel_and_stop(client, tmp_path: Path) -> None:
    first = client.predict(tiny(tmp_path, num_epochs=3), api_name="/start_training")
    assert first.get("state") == "running", first
    second = client.predict(tiny(tmp_path), api_name="/start_training")
    assert second["state"] == "queued" and second["position"] == 1 and second["ahead"] == 0, second
    status = client.predict(api_name="/training_status")  # the running one is shown first
    assert status["run_id"] == first["run_id"]
    cancel = client.predict(api_name="/stop_training")  # the session's newest run: the queued one
    assert cancel["stopped"] == second["run_id"]
    from core.runs.queue import run_status

    cancelled = run_status(second["run_dir"])
    assert cancelled["state"] == "stopped" and "queue" in cancelled["message"]
    status = wait_for(client, lambda s: s["state"] != "running" or s["step"] >= 1, timeout=180)
    assert status["run_id"] == first["run_id"] and status["state"] == "running", status
    stop = client.predict(api_name="/stop_training")
    assert stop["stopped"] == first["run_id"]
    wait_for(client, lambda s: run_status(first["run_dir"])["state"] != "running", timeout=120)
    status = run_status(first["run_dir"])
    assert status["state"] == "stopped", status
    assert 1 <= status["step"] < status["max_steps"]
    assert client.predict(api_name="/stop_training")["stopped"] is None


def test_copy_command_reproduces_the_config(studio) -> None:
    from core.config.schema import set_key
    from studio.tabs.config import DEFAULT_CONFIG, absolute_paths, copy_command

    demo, _ = studio
    cfg = set_key(set_key(demo.studio_context.config.value, "mining.num_negatives", 5), "dataset_name", "my data")
    parts = shlex.split(copy_command(cfg, DEFAULT_CONFIG))
    assert parts[:2] == ["make", "train-embed"] and parts[2].startswith("EMBED_CONFIG=")
    assert "dataset_name=my data" in parts and "mining.num_negatives=5" in parts
    rebuilt = load_config(parts[2].split("=", 1)[1], parts[3:])
    assert rebuilt.to_dict() == absolute_paths(cfg)
    # Every path is absolute, so the command works from the project folder whatever the server's directory was.
    assert Path(parts[2].split("=", 1)[1]).is_absolute() and Path(rebuilt.dataset_path).is_absolute()
    assert Path(rebuilt.runs_dir).is_absolute() and Path(rebuilt.output_dir).is_absolute()

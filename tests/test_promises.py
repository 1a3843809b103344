"""README's promises as a user meets them: commands work from any folder (the defaults ship with the package), a
dataset name is never silently replaced by other data, common column names are detected, train/test leakage is
reported, a run records how to reproduce it and zips without its weights, and one progress display."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from core.__main__ import LIBRARY_BARS_OFF, one_progress_display
from core.config.assets import ASSETS, DEFAULT_CONFIG, TOY_DATASET
from core.config.schema import build_config, load_config
from core.data.validate import validate_file
from core.export.run_zip import MODEL_CARD, RunExportError, export_run
from core.models.load import ModelError, resolve_miner, resolve_model
from core.runs.record import run_record
from core.training.prepare import DatasetNotFound, resolve_dataset, split_data
from tests.clone_helpers import VENV, fresh_clone, user_env
from tests.conftest import ROOT, write_jsonl


def in_folder(folder: Path, *argv: str, timeout: int = 600, **env: str) -> subprocess.CompletedProcess:
    """A command run from `folder`, with this checkout importable as an installed package would be."""
    return subprocess.run(
        list(argv),
        cwd=folder,
        env=user_env(PYTHONPATH=str(ROOT), **env),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


# -- the defaults come with the package -----------------------------------------------------------------------------


def test_shipped_files_are_found_from_the_package():
    assert DEFAULT_CONFIG.is_file() and (ASSETS / "samples" / "it_helpdesk_pairs.jsonl").is_file()
    assert (ROOT / "assets").resolve() == ASSETS  # README's paths in a checkout
    assert TOY_DATASET.read_bytes() == (ROOT / "data" / "raw" / "embedding_dataset.jsonl").read_bytes()
    cfg = load_config(DEFAULT_CONFIG)  # its sample path does not depend on the working directory
    assert Path(cfg.dataset_path).is_absolute() and Path(cfg.dataset_path).is_file()


@pytest.mark.slow
def test_the_wheel_ships_configs_samples_and_toy_pairs(tmp_path):
    clone = fresh_clone(tmp_path / "clone")
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "-q",
            "-w",
            "dist",
            ".",
        ],
        cwd=clone,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    names = zipfile.ZipFile(next((clone / "dist").glob("*.whl"))).namelist()
    for f in (
        "configs/default.yaml",
        "configs/fast.yaml",
        "samples/it_helpdesk_pairs.jsonl",
        "toy/embedding_dataset.jsonl",
    ):
        assert f"core/assets/{f}" in names


# -- no silent fallbacks for data -------------------------------------------------------------------------------------


def test_a_hub_dataset_that_cannot_be_reached_is_an_error(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.chdir(tmp_path)
    cfg = build_config({"dataset_name": "someone/their-dataset", "cache_dir": str(tmp_path / "cache")})
    with pytest.raises(DatasetNotFound) as err:
        resolve_dataset(cfg)
    message = str(err.value)
    assert "someone/their-dataset" in message and "HF_DATASETS_OFFLINE" in message and "dataset_path=" in message
    with pytest.raises(DatasetNotFound, match="'my_data' names no dataset.*owner/name"):
        resolve_dataset(build_config({"dataset_name": "my_data"}))
    # The guide's toy name: its step-1 file where the user made one, else the copy that ships with the package.
    assert resolve_dataset(build_config({"dataset_name": "toy_embedding_dataset"})) == str(TOY_DATASET)
    write_jsonl(tmp_path / "data" / "raw" / "embedding_dataset.jsonl", [{"query": "q", "document": "d"}])
    assert (
        resolve_dataset(build_config({"dataset_name": "toy_embedding_dataset"})) == "data/raw/embedding_dataset.jsonl"
    )


def test_validate_config_refuses_an_unreachable_hub_dataset(tmp_path):
    (tmp_path / "c.yaml").write_text("dataset_name: someone/their-dataset\n", encoding="utf-8")
    r = in_folder(tmp_path, sys.executable, "-m", "core", "validate-config", "--config", "c.yaml")
    assert r.returncode == 1 and "someone/their-dataset" in r.stderr and "names no dataset" in r.stderr, r.stderr


def test_a_dataset_named_on_the_command_line_is_the_data_used():
    """`dataset_name=…` naming data replaces the file's dataset_path; a plain label leaves it."""
    assert load_config(DEFAULT_CONFIG, ["dataset_name=toy_embedding_dataset"]).dataset_path is None
    assert load_config(DEFAULT_CONFIG, ["dataset_name=someone/their-dataset"]).dataset_path is None
    assert load_config(DEFAULT_CONFIG, ["dataset_name=my label"]).dataset_path == str(
        ASSETS / "samples" / "it_helpdesk_pairs.jsonl"
    )


def test_the_mining_model_hint_names_mining_model_name():
    with pytest.raises(ModelError, match="Fix it by giving mining_model_name as"):
        resolve_miner("nobody/no-such-miner", "all-MiniLM-L6-v2")
    with pytest.raises(ModelError, match="Fix it by giving model_name as"):
        resolve_model("nobody/no-such-model")


# -- data: column names and leakage ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "columns", [("query", "answer"), ("question", "context"), ("title", "text"), ("question", "answer")]
)
def test_common_pair_column_names_are_detected(tmp_path, columns):
    q, d = columns
    path = write_jsonl(tmp_path / "d.jsonl", [{q: f"question {i}", d: f"document {i}"} for i in range(3)])
    report = validate_file(path)
    assert report.ok and report.format == "pairs", report.to_text()
    assert list(report.data["query"]) == ["question 0", "question 1", "question 2"]
    assert list(report.data["document"]) == ["document 0", "document 1", "document 2"]


def test_leakage_is_reported_for_shared_positives_and_repeated_queries(tmp_path):
    """Each document answers two queries, and each query comes again in other case and spacing: grouping by exact
    query text puts some of either on both sides of the split."""
    rows = []
    for i in range(30):
        doc = f"Answer number {i}: restart the service and check the logs."
        rows += [
            {"query": f"How do I fix problem {i}?", "document": doc},
            {"query": f"how do i  FIX problem {i}?", "document": f"A second answer to {i}."},
            {"query": f"Problem {i} again", "document": doc},
        ]
    path = write_jsonl(tmp_path / "leaky.jsonl", rows)
    prep = split_data(build_config({"dataset_path": str(path), "test_size": 0.3}))
    overlap = next(w for w in prep.warnings if w.startswith("train/test overlap"))
    assert "query texts appear in both train and test (ignoring case and spacing)" in overlap
    assert "documents are a positive in both train and test" in overlap
    clean = write_jsonl(tmp_path / "clean.jsonl", [{"query": f"q {i}", "document": f"d {i}"} for i in range(30)])
    assert not any("overlap" in w for w in split_data(build_config({"dataset_path": str(clean)})).warnings)


# -- one progress display ----------------------------------------------------------------------------------------------


def test_library_bars_are_off_where_the_project_prints_progress_or_logs(monkeypatch):
    import tqdm.std

    # tqdm as it is before any silencing (an earlier CLI call in this process may have silenced it); restored after
    monkeypatch.setattr(tqdm.std.tqdm, "__init__", getattr(tqdm.std.tqdm.__init__, "original", tqdm.std.tqdm.__init__))
    for name in LIBRARY_BARS_OFF:
        monkeypatch.delenv(name, raising=False)
    one_progress_display("config", terminal=True)
    assert not any(os.environ.get(n) for n in LIBRARY_BARS_OFF)
    assert not tqdm.std.tqdm(range(2), disable=False).disable
    one_progress_display("train", terminal=True)  # the project's own progress lines
    assert all(os.environ.get(n) == "1" for n in LIBRARY_BARS_OFF)
    assert tqdm.std.tqdm(range(2), disable=False).disable  # even where a library asks for its bar
    for name in LIBRARY_BARS_OFF:
        monkeypatch.delenv(name, raising=False)
    one_progress_display("eval", terminal=False)  # a log file
    assert all(os.environ.get(n) == "1" for n in LIBRARY_BARS_OFF)


# -- a reproducible run, from a folder of one's own --------------------------------------------------------------------


def test_a_run_record_names_command_versions_and_machine(tmp_path):
    record = run_record(tmp_path)
    assert record["command"]["via"] in ("cli", "make", "studio") and record["command"]["argv"]
    assert str(tmp_path.resolve() / "config.yaml") in record["command"]["reproduce"][0]
    versions = record["versions"]
    for lib in ("python", "torch", "sentence-transformers", "transformers", "faiss"):
        assert versions[lib], lib
    machine = record["machine"]
    assert machine["cpu"] and machine["cpu_cores"] >= 1 and machine["memory_gb"] > 0 and "gpus" in machine


def test_export_run_refuses_a_folder_that_is_no_run(tmp_path):
    with pytest.raises(RunExportError, match="not a run folder"):
        export_run(tmp_path, tmp_path / "out")


@pytest.mark.slow
def test_train_record_and_export_from_a_folder_of_ones_own(tmp_path):
    """The installed `embedding-studio` command, run elsewhere than the project: the default config and the toy pairs
    come with the package; the log holds the project's progress lines only; the run zips without its weights."""
    work = tmp_path / "elsewhere"
    work.mkdir()
    log = work / "train.log"
    with log.open("w") as f:
        r = subprocess.run(
            [str(VENV / "bin" / "embedding-studio"), "train", "dataset_name=toy_embedding_dataset", "num_epochs=1"]
            + ["max_seq_length=1024", "mining.num_negatives=1", "output_dir=model", "runs_dir=runs", "cache_dir=cache"],
            cwd=work,
            env=user_env(PYTHONPATH=str(ROOT)),
            stdout=f,
            stderr=subprocess.STDOUT,
            timeout=600,
        )
    text = log.read_text(encoding="utf-8")
    assert r.returncode == 0, text[-3000:]
    assert f"data={TOY_DATASET}" in text and "finished: model saved to" in text
    assert "merged: kept 0.5 of what training changed" in text  # the default's WiSE-FT step, said in the log
    # a value the model cannot take is said, not silently replaced (the toy texts are short: no cost)
    assert "warning: max_seq_length=1024 is more than sentence-transformers/all-MiniLM-L6-v2 takes: using its" in text
    assert "\r" not in text and "it/s]" not in text and "Batches:" not in text  # no library bars in the log
    run_dir = next((work / "runs").iterdir())
    record = json.loads((run_dir / "record.json").read_text(encoding="utf-8"))
    assert record["command"]["via"] == "cli" and "dataset_name=toy_embedding_dataset" in record["command"]["argv"]
    assert record["command"]["cwd"] == str(work) and record["versions"]["torch"]

    r = in_folder(work, sys.executable, "-m", "core", "export-run", str(run_dir), "--out", "exports")
    assert r.returncode == 0, r.stderr
    zipped = next((work / "exports").glob("*.zip"))
    names = {n.split("/", 1)[1] for n in zipfile.ZipFile(zipped).namelist()}
    assert {"config.yaml", "record.json", "events.jsonl", "metrics.json", "data.json", "mined.parquet"} <= names
    assert MODEL_CARD in names and not any(n.startswith("model/") for n in names)
    with_model = export_run(run_dir, work / "exports", include_weights=True)
    names = zipfile.ZipFile(with_model).namelist()
    assert any(n.endswith("model/model.safetensors") for n in names) and any(
        n.endswith("model/modules.json") for n in names
    )

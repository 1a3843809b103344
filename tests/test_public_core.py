"""The engine's side of public mode and input hardening: confined paths, visitor folders and their clean-up,
bounded config values, untrusted YAML, lone surrogates, the output-folder guard and the training time limit."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from core.config.limits import Limits
from core.config.schema import ConfigError, build_config, config_from_yaml_text, load_config
from core.data.validate import read_texts, validate_file
from core.models.load import check_output_dir
from core.public.sandbox import PathRefused, Sandbox
from core.public.visitors import SEEN_FILE, Visitors, disk_usage
from core.runs.queue import run_status, start_training
from tests.conftest import SAMPLES, tiny_overrides, write_jsonl


@pytest.fixture()
def sandbox(tmp_path: Path) -> Sandbox:
    (tmp_path / "visitor").mkdir()
    (tmp_path / "server").mkdir()
    (tmp_path / "server" / "secret.txt").write_text("secret", encoding="utf-8")
    return Sandbox(tmp_path / "visitor")


def test_paths_resolve_inside_the_visitor_folder_or_the_samples(sandbox: Sandbox, tmp_path: Path) -> None:
    assert sandbox.path("data.jsonl", "dataset_path") == tmp_path / "visitor" / "data.jsonl"
    assert sandbox.path("assets/samples/it_helpdesk_pairs.jsonl", "dataset_path") == SAMPLES / "it_helpdesk_pairs.jsonl"
    assert sandbox.path("outputs/m", "output_dir", write=True) == tmp_path / "visitor" / "outputs" / "m"
    for value, key, write in [
        (tmp_path / "server" / "secret.txt", "dataset_path", False),
        ("../server", "output_dir", True),
        ("~/x", "corpus_path", False),
        ("/etc/passwd", "corpus_path", False),
        (str(SAMPLES), "output_dir", True),  # samples are read-only
        ("a\x00b", "dataset_path", False),
    ]:
        with pytest.raises(PathRefused) as err:
            sandbox.path(value, key, write)
        assert err.value.errors[0].startswith(key)


def test_a_symlink_out_of_the_folder_is_refused(sandbox: Sandbox, tmp_path: Path) -> None:
    os.symlink(tmp_path / "server", tmp_path / "visitor" / "link")
    with pytest.raises(PathRefused):
        sandbox.path("link/secret.txt", "dataset_path")


def test_models_bundled_own_or_cached_only(sandbox: Sandbox, tmp_path: Path) -> None:
    assert sandbox.model("sentence-transformers/all-MiniLM-L6-v2") == "sentence-transformers/all-MiniLM-L6-v2"
    (tmp_path / "visitor" / "mine").mkdir()
    assert sandbox.model("mine") == str(tmp_path / "visitor" / "mine")
    for name in [str(tmp_path / "server"), "../server", "someone/not-cached-model-xyz"]:
        with pytest.raises(PathRefused):
            sandbox.model(name)


def test_a_config_is_confined_whole(sandbox: Sandbox, tmp_path: Path) -> None:
    cfg = sandbox.config(build_config({"dataset_path": "assets/samples/it_helpdesk_pairs.jsonl"}))
    assert (
        Path(cfg.output_dir).is_relative_to(tmp_path / "visitor")
        and Path(cfg.runs_dir).is_relative_to(tmp_path / "visitor")
        and Path(cfg.cache_dir).is_relative_to(tmp_path / "visitor")
    )
    with pytest.raises(PathRefused, match="dataset_path"):  # else dataset_name would be looked up as a path
        sandbox.config(build_config({"dataset_name": str(tmp_path / "server" / "secret.txt")}))


def test_visitor_folders_are_swept_after_their_time_to_live(tmp_path: Path) -> None:
    visitors = Visitors(tmp_path)
    old, busy, fresh = visitors.issue(), visitors.issue(), visitors.issue()
    for vid in (old, busy, fresh):  # folders are made on a visitor's first write
        visitors.folder(vid).mkdir()
        (visitors.folder(vid) / SEEN_FILE).touch()
    for vid in (old, busy):
        past = time.time() - 3 * 3600
        os.utime(visitors.folder(vid) / SEEN_FILE, (past, past))
    (visitors.folder(old) / "upload.jsonl").write_text("x" * 1000, encoding="utf-8")
    assert disk_usage(visitors.folder(old)) >= 1000
    removed = visitors.sweep(3600, busy={visitors.folder(busy) / "runs" / "r1"})
    assert removed == [visitors.folder(busy).parent / old.split(".")[0]]
    assert not visitors.folder(old).exists() and visitors.folder(busy).is_dir() and visitors.folder(fresh).is_dir()


def test_limits_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STUDIO_MAX_ROWS", "500")
    monkeypatch.setenv("STUDIO_MAX_TRAIN_MINUTES", "2.5")
    limits = Limits.from_env()
    assert limits.dataset_rows == 500 and limits.train_minutes == 2.5 and "500 rows" in limits.describe()
    monkeypatch.setenv("STUDIO_MAX_ROWS", "lots")
    with pytest.raises(ValueError, match="STUDIO_MAX_ROWS"):
        Limits.from_env()


def test_untrusted_yaml_is_bounded(tmp_path: Path) -> None:
    bomb = "a: &a [x, x]\nb: &b [*a, *a]\nc: [*b, *b]\n"
    for text in (bomb, "a: " + "[" * 3000 + "]" * 3000, "x: " + "y" * 70_000):
        t0 = time.time()
        with pytest.raises(ConfigError):
            config_from_yaml_text(text)
        assert time.time() - t0 < 2
    path = tmp_path / "bomb.yaml"
    path.write_text(bomb, encoding="utf-8")
    with pytest.raises(ConfigError, match="anchors and aliases"):
        load_config(path)


def test_absurd_values_are_refused_with_a_short_message() -> None:
    with pytest.raises(ConfigError) as err:
        build_config(
            {
                "num_epochs": 1e9,
                "batch_size": 10**7,
                "mining": {"batch_size": 10**7, "range_max": 10**9},
                "matryoshka_dims": [0, -3],
                "dataset_name": "x" * 5000,
            }
        )
    text = str(err.value)
    for key in ("num_epochs", "batch_size", "mining.batch_size", "mining.range_max", "matryoshka_dims"):
        assert key in text
    assert len(text) < 2000
    assert build_config({"matryoshka_dims": [64, 384, 128]}).matryoshka_dims == [384, 128, 64]


def test_lone_surrogates_are_refused_with_the_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(
        '{"query": "ok", "document": "fine"}\n{"query": "bad \\ud800 text", "document": "x"}\n', encoding="utf-8"
    )
    report = validate_file(path)
    assert not report.ok
    assert [(e.line, e.field) for e in report.errors] == [(2, "query")] and "surrogate" in report.errors[0].message
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text('{"text": "fine"}\n{"text": "\\udfff"}\n', encoding="utf-8")
    with pytest.raises(ValueError, match="line 2"):
        read_texts(corpus)


def test_output_dir_never_replaces_a_folder_of_other_files(tmp_path: Path) -> None:
    check_output_dir(tmp_path / "new")  # missing: fine
    (tmp_path / "empty").mkdir()
    check_output_dir(tmp_path / "empty")
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "modules.json").write_text("[]", encoding="utf-8")
    check_output_dir(tmp_path / "model")  # an earlier model output may be replaced
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "notes.txt").write_text("mine", encoding="utf-8")
    with pytest.raises(ValueError, match="no saved model"):
        check_output_dir(tmp_path / "docs")


def test_training_refuses_a_folder_of_other_files_before_it_starts(tmp_path: Path, sample_pairs) -> None:
    from core.training.run import train

    data = write_jsonl(tmp_path / "pairs.jsonl", sample_pairs[:24])
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "keep.txt").write_text("keep", encoding="utf-8")
    result = train(load_config(None, tiny_overrides(tmp_path, data)))
    assert result.state == "failed" and "no saved model" in result.message
    assert (tmp_path / "model" / "keep.txt").read_text(encoding="utf-8") == "keep"


@pytest.mark.slow
@pytest.mark.usefixtures("own_queue")
def test_a_training_over_its_time_limit_stops_and_says_why(tmp_path: Path, sample_pairs) -> None:
    data = write_jsonl(tmp_path / "pairs.jsonl", sample_pairs[:40])
    cfg = load_config(None, tiny_overrides(tmp_path, data, num_epochs=30, **{"mining.num_negatives": 0}))
    run_dir, started = start_training(cfg, time_limit_s=1)
    assert started["state"] in ("running", "queued")
    deadline = time.time() + 240
    while run_status(run_dir)["state"] in ("running", "queued") and time.time() < deadline:
        time.sleep(1)
    status = run_status(run_dir)
    assert status["state"] == "stopped", status
    assert "time limit" in status["message"] and status["model_dir"]
    assert status["step"] < status["max_steps"]
    metrics = json.loads((run_dir / "metrics.json").read_text(encoding="utf-8"))
    assert metrics["best_checkpoint"] is None or "/" not in metrics["best_checkpoint"]

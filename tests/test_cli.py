"""The CLI as a user runs it: exit codes, readable errors, the seed walk-through, similarity and search."""

from __future__ import annotations

import json
import subprocess
import sys

import pandas as pd
import pytest

from core.training.mining import FLAG_MARGIN
from tests.conftest import ROOT, tiny_overrides, write_jsonl


def cli(*args, cwd=ROOT, timeout=300):
    proc = subprocess.run(
        [sys.executable, "-m", "core", *map(str, args)], cwd=cwd, capture_output=True, text=True, timeout=timeout
    )
    assert "Traceback" not in proc.stdout + proc.stderr, proc.stdout + proc.stderr
    return proc


def test_validate_exit_codes(tmp_path):
    ok = cli("validate", "assets/samples/it_helpdesk_pairs.jsonl")
    assert ok.returncode == 0 and "pairs" in ok.stdout
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"query": "q", "document": "d"}\n{"query": "q2"}\nnot json\n')
    r = cli("validate", bad)
    assert r.returncode == 1
    assert "line 2" in r.stdout and "document" in r.stdout and "line 3" in r.stdout and "bad.jsonl" in r.stdout
    r = cli("validate", bad, "--json")
    report = json.loads(r.stdout)
    assert report["ok"] is False and {e["line"] for e in report["errors"]} >= {2, 3}
    assert cli("validate").returncode == 2  # usage error
    assert cli("validate", tmp_path / "missing.jsonl").returncode == 1


def test_validate_with_tokenizer_reports_lengths():
    r = cli("validate", "assets/samples/it_helpdesk_pairs.jsonl", "--model", "all-MiniLM-L6-v2", "--json")
    stats = json.loads(r.stdout)["stats"]
    assert stats["token_lengths"]["document"]["p50"] > stats["token_lengths"]["query"]["p50"]


def test_config_command_and_errors():
    r = cli("config", "assets/configs/default.yaml", "mining.num_negatives=5")
    assert r.returncode == 0 and "num_negatives: 5" in r.stdout
    r = cli("config", "assets/configs/default.yaml", "batch_sise=4")
    assert r.returncode == 1 and "did you mean 'batch_size'" in r.stderr


def test_seed_walkthrough(tmp_path):
    """Steps 1-3 of the seed document, verbatim, in a copy of the project's seed files."""
    (tmp_path / "data" / "raw").mkdir(parents=True)
    (tmp_path / "data" / "raw" / "embedding_dataset.jsonl").write_bytes(
        (ROOT / "data" / "raw" / "embedding_dataset.jsonl").read_bytes()
    )
    assert cli("setup-dirs", cwd=tmp_path).returncode == 0
    for d in ["configs", "scripts", "data", "models", "checkpoints", "outputs"]:
        assert (tmp_path / "embeddingFT" / d).is_dir()
    cfg = (tmp_path / "embeddingFT" / "configs" / "my_embedding.yaml").read_text()
    assert 'dataset_name: "toy_embedding_dataset"' in cfg and 'cache_dir: "/tmp/embedding_cache"' in cfg
    r = cli("validate-config", "--config", "embeddingFT/configs/my_embedding.yaml", cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "8" in r.stdout and "very little data" in r.stdout


def test_missing_dataset_says_where_it_looked(tmp_path):
    (tmp_path / "c.yaml").write_text("dataset_name: nowhere\n")
    r = cli("validate-config", "--config", "c.yaml", cwd=tmp_path)
    assert r.returncode == 1 and "nowhere" in r.stderr and "data/raw/embedding_dataset.jsonl" in r.stderr


@pytest.mark.slow
def test_similarity_and_search(tmp_path):
    r = cli("similarity", "--model", "all-MiniLM-L6-v2", "reset my password", "password reset steps", "printer jam")
    scores = [float(line.split()[0]) for line in r.stdout.splitlines()]
    assert r.returncode == 0 and scores[0] > scores[1]
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("How to reset a password\nFixing a paper jam in the printer\nBooking a meeting room\n")
    r = cli("search", "--model", "all-MiniLM-L6-v2", "--corpus", corpus, "forgot my password", "-k", "2")
    assert r.returncode == 0 and r.stdout.splitlines()[1].endswith("How to reset a password")
    r = cli("similarity", "--model", tmp_path / "none", "a", "b")
    assert r.returncode == 1 and "does not exist" in r.stderr


@pytest.mark.slow
def test_mine_never_takes_a_copy_of_the_positive(tmp_path, sample_pairs):
    rows = sample_pairs[:30]
    data = write_jsonl(tmp_path / "p.jsonl", rows)
    planted = rows[0]["document"].upper() + " !"  # the positive's text again, in another case: the top candidate
    corpus = tmp_path / "corpus.txt"
    corpus.write_text(planted + "\n" + "\n".join(r["document"] for r in sample_pairs[60:80]) + "\n")
    r = cli(
        "mine",
        "--config",
        "assets/configs/default.yaml",
        *tiny_overrides(tmp_path, data, corpus_path=corpus, test_size=0),
        "mining.margin=null",
    )
    assert r.returncode == 0, r.stderr[-2000:]
    run_dir = next((tmp_path / "runs").iterdir())
    mined = pd.read_parquet(run_dir / "mined.parquet")
    assert planted not in set(mined["negative"]), "a near-copy of the positive is never a negative"
    first = mined[mined["query"] == rows[0]["query"]]
    assert len(first) == 1, "the next candidate replaces the skipped copy"
    stats = json.loads((run_dir / "mining_stats.json").read_text())
    assert stats["skipped"]["near_duplicate"] >= 1 and stats["rows_without_enough_negatives"] == 0
    # With no margin, negatives within FLAG_MARGIN of (or above) their positive are flagged for inspection.
    close = mined["negative_score"] >= mined["positive_score"] - FLAG_MARGIN
    assert (mined["suspected_false_negative"] == close).all()
    assert stats["suspected_false_negatives"] == int(close.sum())


@pytest.mark.slow
@pytest.mark.parametrize("margin", ["0.3"])
def test_remining_uses_cached_embeddings(tmp_path, sample_pairs, margin):
    data = write_jsonl(tmp_path / "p.jsonl", sample_pairs[:30])
    base = ["mine", "--config", "assets/configs/default.yaml", *tiny_overrides(tmp_path, data, test_size=0)]
    assert cli(*base).returncode == 0
    cached = sorted(p.name for p in (tmp_path / "cache").rglob("*.npy"))
    r = cli(*base, "mining.margin_type=absolute", f"mining.margin={margin}")
    assert r.returncode == 0
    assert sorted(p.name for p in (tmp_path / "cache").rglob("*.npy")) == cached  # nothing new was encoded
    stats = json.loads(r.stdout[r.stdout.index("{") : r.stdout.rindex("}") + 1])
    assert stats["skipped_by_margin"] > 0


def test_runs_and_stop_name_a_missing_folder(tmp_path, capsys):
    from core.__main__ import main

    assert main(["runs", "--runs-dir", str(tmp_path / "nope")]) == 1
    assert "no runs folder at" in capsys.readouterr().err
    assert main(["runs", "--runs-dir", str(tmp_path)]) == 0
    assert "no runs in" in capsys.readouterr().out
    (tmp_path / "file").write_text("x", encoding="utf-8")
    for target in (tmp_path / "nope", tmp_path / "file", tmp_path):
        assert main(["stop", str(target)]) == 1
        assert "no run at" in capsys.readouterr().err
    assert not (tmp_path / "STOP").exists()

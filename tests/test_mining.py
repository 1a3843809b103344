"""Mining around the library: its skip statistics parsed while the wording holds, its embedding cache per length,
the training rows it leaves out as too easy."""

from __future__ import annotations

import logging

import pandas as pd
import pytest

from core.config.schema import load_config
from core.retrieval.negatives import remine
from core.runs.events import EventWriter
from core.runs.folders import MINED_FILE
from core.training.mining import _skip_counts, easiest_rows, training_table
from core.training.prepare import build_table, split_data
from core.training.probe import trained_pairs
from tests.conftest import tiny_overrides, write_jsonl


def test_skip_counts_parse_the_library_line_and_warn_when_it_changes(caplog):
    printed = "Skipped 427,503 potential negatives (8.36%) due to the relative_margin of 0.05.\n"
    with caplog.at_level(logging.WARNING, logger="core.training.mining"):
        assert _skip_counts(printed) == {"relative_margin": 427503}
        assert not caplog.records
        assert _skip_counts("Skipped 12 candidate negatives because of max_score=0.8\n") == {}
    assert "changed format" in caplog.text


def test_the_embedding_cache_tells_truncation_lengths_apart(tmp_path, sample_pairs):
    """Re-mining at another max_seq_length encodes again: the library keys its cache by text and hub name only, so
    a shared folder would hand 8-token embeddings to a 128-token mining."""
    data = write_jsonl(tmp_path / "pairs.jsonl", sample_pairs[:40])
    scores = {}
    for length in (8, 128, 8):
        cfg = load_config(None, tiny_overrides(tmp_path, data, max_seq_length=length))
        scores.setdefault(length, []).append(remine(cfg).stats["positive_scores"]["mean"])
    assert scores[8][0] == scores[8][1]  # the cache serves the same length (or encoding is deterministic)
    assert abs(scores[8][0] - scores[128][0]) > 0.01, scores


def test_triplet_output_trains_each_pair_once_per_negative():
    queries, positives = ["q1", "q2"], ["p1", "p2"]
    negatives = [["n1a", "n1b"], ["n2a"]]  # q2 is one short: topped up from the pool, never with its positive
    table = training_table(queries, positives, negatives, 2, ["p1", "p2", "x"], seed=0, output_format="triplet")
    assert list(table.columns) == ["query", "positive", "negative_1"] and len(table) == 4
    rows = {(r.query, r.negative_1) for r in table.itertuples()}
    assert {("q1", "n1a"), ("q1", "n1b"), ("q2", "n2a")} <= rows and ("q2", "p2") not in rows
    wide = training_table(queries, positives, negatives, 2, ["p1", "p2", "x"], seed=0)
    assert list(wide.columns) == ["query", "positive", "negative_1", "negative_2"] and len(wide) == 2


def test_exclusions_file_errors_name_the_file_and_line(tmp_path):
    from core.training.mining import load_exclusions, read_exclusions

    good = tmp_path / "ok.jsonl"
    good.write_text('{"query": "q", "negative": "n"}\n\n{"query": "q", "negative": "m"}\n', encoding="utf-8")
    assert read_exclusions(good) == [("q", "n"), ("q", "m")]
    for name, content, says in (
        ("array.jsonl", "[1, 2]\n", "array.jsonl: line 1: expected"),
        ("types.jsonl", '{"query": "q", "negative": "n"}\n{"query": 1}\n', "types.jsonl: line 2: expected"),
        ("junk.jsonl", "not json\n", "junk.jsonl: line 1: expected"),
    ):
        (tmp_path / name).write_text(content, encoding="utf-8")
        with pytest.raises(ValueError, match=says):
            read_exclusions(tmp_path / name)
    (tmp_path / "latin1.jsonl").write_bytes(b'{"query": "caf\xe9", "negative": "n"}\n')
    with pytest.raises(ValueError, match="cannot read .*latin1.jsonl as UTF-8"):
        read_exclusions(tmp_path / "latin1.jsonl")
    with pytest.raises(ValueError, match="mining.exclude_path: .*nope.jsonl not found"):
        load_exclusions(str(tmp_path / "nope.jsonl"))
    assert load_exclusions(str(tmp_path / "nope.jsonl"), missing_ok=True) == set()
    with pytest.raises(ValueError, match="is not a file"):
        read_exclusions(tmp_path)


def test_easiest_rows_are_the_largest_gaps_and_unmined_rows_are_not_judged():
    assert easiest_rows([0.1, None, 0.5, 0.3, 0.2], 0.5) == {2, 3}
    assert easiest_rows([0.1, 0.2], 0.0) == set() and easiest_rows([None, None, None], 0.9) == set()


def test_skip_easiest_leaves_out_the_pairs_whose_mined_negative_is_furthest_below(tmp_path, sample_pairs):
    """The real bundled model mines; the training table then lacks the quarter of pairs with the largest gap between
    the positive's score and the hardest negative's, mined.parquet still shows them, and the estimate counts as many."""
    data = write_jsonl(tmp_path / "pairs.jsonl", sample_pairs[:40])
    cfg = load_config(None, tiny_overrides(tmp_path, data, **{"mining.skip_easiest": 0.25}))
    prep = split_data(cfg)
    run_dir = tmp_path / "run"
    build_table(prep, cfg, run_dir, EventWriter(run_dir / "events.jsonl"))
    hardest = pd.read_parquet(run_dir / MINED_FILE).query("rank == 0")
    n_skip = int(len(hardest) * 0.25)
    easy = {(r.query, r.positive) for r in hardest.nlargest(n_skip, "gap").itertuples()}
    trained = {(r.query, r.positive) for r in prep.table.itertuples()}
    assert prep.mining.stats["skipped_easiest_rows"] == n_skip == len(easy) > 0
    assert len(prep.table) == len(prep.train) - n_skip == trained_pairs(cfg, "pairs", len(prep.train))
    assert not easy & trained and len(hardest) == len(prep.train)  # every pair was mined; the skipped stay visible

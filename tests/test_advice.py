"""Small-data warnings: what they say, and when they stay silent."""

from __future__ import annotations

import pandas as pd

from core.evaluation.advice import before_start, near_max_warning, small_split_warning, warn_after_baseline
from core.runs.events import EventWriter, read_events
from core.training.prepare import Prepared


def test_small_test_split_says_what_to_do():
    text = small_split_warning(12, 120, 0.1)
    assert "only 12 queries" in text and "test_size" in text and "0.1 of 120 rows" in text
    assert small_split_warning(30) is None


def test_near_maximum_baseline_points_at_distractors():
    text = near_max_warning({"ndcg@10": 1.0}, "ndcg@10")
    assert "1.0000" in text and "corpus_path" in text
    assert near_max_warning({"ndcg@10": 0.97}, "ndcg@10") is None and near_max_warning({}, "ndcg@10") is None


def test_before_start_from_the_dataset_size():
    assert "only 12 queries" in before_start({"rows": 120, "format": "pairs"}, {"test_size": 0.1})[0]
    assert before_start({"rows": 1000, "format": "pairs"}, {"test_size": 0.1}) == []
    assert before_start(None, {}) == []


def test_run_warnings_are_events(tmp_path):
    test = pd.DataFrame({"query": [f"q{i}" for i in range(8)], "document": [f"d{i}" for i in range(8)]})
    prep = Prepared("pairs", test, test, [], pd.DataFrame(), {})
    writer = EventWriter(tmp_path / "events.jsonl")
    texts = warn_after_baseline(writer, prep, {"ndcg@10": 0.99}, "ndcg@10")
    events = read_events(tmp_path / "events.jsonl")[0]
    assert [e["kind"] for e in events] == ["small_test_split", "baseline_near_max"]
    assert [e["message"] for e in events] == texts

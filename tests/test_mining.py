"""Mining around the library: its skip statistics parsed while the wording holds, its embedding cache per length."""

from __future__ import annotations

import logging

from core.config import load_config
from core.mining import _skip_counts
from core.negatives import remine
from tests.conftest import tiny_overrides, write_jsonl


def test_skip_counts_parse_the_library_line_and_warn_when_it_changes(caplog):
    printed = "Skipped 427,503 potential negatives (8.36%) due to the relative_margin of 0.05.\n"
    with caplog.at_level(logging.WARNING, logger="core.mining"):
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

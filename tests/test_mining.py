"""The library prints its skip statistics as text: parsed while the wording holds, a warning when it changes."""

from __future__ import annotations

import logging

from core.mining import _skip_counts


def test_skip_counts_parse_the_library_line_and_warn_when_it_changes(caplog):
    printed = "Skipped 427,503 potential negatives (8.36%) due to the relative_margin of 0.05.\n"
    with caplog.at_level(logging.WARNING, logger="core.mining"):
        assert _skip_counts(printed) == {"relative_margin": 427503}
        assert not caplog.records
        assert _skip_counts("Skipped 12 candidate negatives because of max_score=0.8\n") == {}
    assert "changed format" in caplog.text

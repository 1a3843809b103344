"""Honest small-data warnings: when the test split is too small to measure a difference, or the base model already
scores near the maximum, a before/after table of +0.0000 says nothing — these say why and what to do."""

from __future__ import annotations

from typing import Any

from core.runs.events import EventWriter

MIN_TEST_QUERIES = 30  # below this one query more or less right moves a metric by over 3 points
NEAR_MAX = 0.98  # a baseline at or above this leaves no room to show an improvement


def small_split_warning(test_queries: int, rows: int | None = None, test_size: float | None = None) -> str | None:
    if test_queries >= MIN_TEST_QUERIES:
        return None
    more = f" (now {test_size:g} of {rows} rows)" if rows and test_size is not None else ""
    return (
        f"The test split has only {test_queries} queries: too few to measure a difference reliably (one query "
        f"moves a metric by {100 / max(1, test_queries):.0f} points). Set a larger test_size{more}, e.g. "
        f"test_size={MIN_TEST_QUERIES} or more, or add data."
    )


def near_max_warning(baseline: dict[str, float], primary: str) -> str | None:
    value = baseline.get(primary)
    if value is None or value < NEAR_MAX:
        return None
    return (
        f"The base model already scores {primary} {value:.4f} on the test split: there is almost no room to "
        "improve, so before and after look the same. Make the evaluation harder: add a corpus_path of "
        "distractor documents (texts like yours that answer other questions), or use a larger test split."
    )


def expected_test_queries(rows: int, test_size: float) -> int:
    """Roughly how many test rows a split of `rows` gives (data.split_dataset: a count if > 1, else a fraction)."""
    return int(test_size) if test_size > 1 else int(round(rows * test_size))


def before_start(dataset: dict[str, Any] | None, config: dict[str, Any] | None) -> list[str]:
    """Warnings a user should read before pressing Start, from the selected dataset's size and the config."""
    if not dataset or not dataset.get("rows") or dataset.get("format") == "scored":
        return []
    test_size = float((config or {}).get("test_size") or 0.1)
    warning = small_split_warning(
        expected_test_queries(int(dataset["rows"]), test_size), int(dataset["rows"]), test_size
    )
    return [warning] if warning else []


def warn_after_baseline(writer: EventWriter, prep, before: dict[str, float], primary: str) -> list[str]:
    """`warning` events for a run whose test split or baseline cannot show an improvement; returns their texts."""
    if prep.fmt == "scored":
        n = len(prep.test)
        small = None if n >= MIN_TEST_QUERIES else small_split_warning(n).replace("queries", "pairs", 1)
    else:
        small = small_split_warning(int(prep.test["query"].nunique()) if len(prep.test) else 0)
    found = [
        (kind, text)
        for kind, text in (("small_test_split", small), ("baseline_near_max", near_max_warning(before, primary)))
        if text
    ]
    for kind, text in found:
        writer.emit("warning", kind=kind, message=text)
    return [text for _, text in found]

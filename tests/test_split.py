"""Tests for core.data.split.split_dataset: seeded, group-aware train/test splits (rows of one query never straddle)."""

from __future__ import annotations

import pandas as pd
import pytest

from core.data.validate import split_dataset
from tests.data_helpers import pairs


def grouped_frame(groups: int = 30, seed_sizes: tuple[int, ...] = (1, 2, 3, 5)) -> pd.DataFrame:
    rows = []
    for g in range(groups):
        rows += [
            {"query": f"q{g}", "document": f"d{g}-{k}", "_line": len(rows) + 1}
            for k in range(seed_sizes[g % len(seed_sizes)])
        ]
    return pd.DataFrame(rows)


@pytest.mark.parametrize("seed", [0, 1, 2, 42])
@pytest.mark.parametrize("test_size", [0.1, 0.3, 12, 25])
def test_split_groups_never_straddle_and_sizes_are_close(seed, test_size):
    df = grouped_frame()
    train, test = split_dataset(df, None, test_size, seed)
    assert len(train) + len(test) == len(df)
    assert not set(train["query"]) & set(test["query"])
    target = test_size if test_size > 1 else round(test_size * len(df))
    assert abs(len(test) - target) <= 2  # groups hold at most 5 rows; the greedy fill lands within half of one
    assert list(train.index) == list(range(len(train))) and list(test.index) == list(range(len(test)))
    assert train["_line"].is_monotonic_increasing and test["_line"].is_monotonic_increasing


def test_split_is_seeded_and_deterministic():
    df = grouped_frame()
    a = split_dataset(df, None, 0.2, seed=7)
    b = split_dataset(df, None, 0.2, seed=7)
    pd.testing.assert_frame_equal(a[1], b[1])
    others = {tuple(split_dataset(df, None, 0.2, seed=s)[1]["query"].unique()) for s in range(8)}
    assert len(others) > 1


def test_split_exact_sizes_with_unique_groups():
    df = pd.DataFrame(pairs(100))
    assert [len(x) for x in split_dataset(df, None, 0.1, 0)] == [90, 10]
    assert [len(x) for x in split_dataset(df, None, 25, 0)] == [75, 25]
    train, test = split_dataset(df, None, 0, 0)
    assert len(train) == 100 and len(test) == 0 and list(test.columns) == list(df.columns)


def test_split_samples_first_then_splits():
    df = pd.DataFrame(pairs(200))
    train, test = split_dataset(df, 50, 0.2, seed=3)
    assert (len(train), len(test)) == (40, 10)
    train2, test2 = split_dataset(df, 0.5, 10, seed=3)
    assert (len(train2), len(test2)) == (90, 10)
    again = split_dataset(df, 50, 0.2, seed=3)
    pd.testing.assert_frame_equal(train, again[0])
    assert set(split_dataset(df, 50, 0.2, seed=4)[0]["query"]) != set(train["query"])
    assert len(pd.concat(split_dataset(df, 1.0, 0, seed=3))) == 200
    assert len(pd.concat(split_dataset(df, 5000, 0, seed=3))) == 200


def test_split_group_column_and_errors():
    df = pd.DataFrame({"doc1": ["a", "a", "b", "c"], "doc2": ["x", "y", "x", "y"], "similarity": [0.1, 0.2, 0.3, 0.4]})
    for seed in range(5):
        train, test = split_dataset(df, None, 2, seed)  # default group: doc1
        assert not set(train["doc1"]) & set(test["doc1"])
        train, test = split_dataset(df, None, 2, seed, group_column="doc2")
        assert not set(train["doc2"]) & set(test["doc2"]) and len(train) == 2
    with pytest.raises(ValueError, match="group column 'nope'"):
        split_dataset(df, None, 1, 0, group_column="nope")
    notes: list[str] = []
    train, test = split_dataset(df, None, 1.0, 0, notes=notes)  # 3 distinct doc1 values: evaluate on training rows
    assert len(train) == 4 and test.equals(train) and test.attrs.get("on_train")
    assert "evaluating on the training pairs" in notes[0]
    with pytest.raises(ValueError, match="must not be negative"):
        split_dataset(df, None, -1, 0)


def test_split_with_one_big_group_still_gives_a_test_set():
    df = pd.DataFrame({"query": ["big"] * 20 + ["small"], "document": [f"d{i}" for i in range(21)]})
    train, test = split_dataset(df, None, 0.1, 0)
    assert test["query"].tolist() == ["small"] and len(train) == 20


def test_sizes_larger_than_the_data_are_capped_with_notes():
    """The seed guide's sample_size 500 / test_size 100 on its 8 pairs: all rows, one test query (<= 20%)."""
    df = pd.DataFrame(pairs(8))
    notes: list[str] = []
    train, test = split_dataset(df, 500, 100, seed=42, notes=notes)
    assert (len(train), len(test)) == (7, 1) and not test.attrs.get("on_train")
    assert notes[0] == "sample_size=500 is larger than the data: used all 8 rows"
    assert "test_size=100 is larger than the data (8 rows): used 1 of 8 queries" in notes[1]
    many = pd.DataFrame(pairs(40))
    train, test = split_dataset(many, None, 40, seed=1, notes=notes)
    assert len(test) == 8 and len(train) == 32  # 20% of 40 queries


def test_a_small_fraction_still_holds_out_a_row_and_counts_are_whole(sample_pairs):
    from core.config.schema import ConfigError, build_config

    df = pd.DataFrame(sample_pairs[:40])
    train, test = split_dataset(df, None, 0.0001, 42)
    assert len(test) >= 1 and len(train) + len(test) == 40
    for key in ("sample_size", "test_size"):
        with pytest.raises(ConfigError, match=f"{key}.*a count must be a whole number"):
            build_config({key: 1.5})
    for seed in (-1, 2**32):
        with pytest.raises(ConfigError, match="seed"):
            build_config({"seed": seed})

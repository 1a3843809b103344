"""Splitting and fingerprinting a validated dataset: a seeded sample, a train/test split that keeps each query on
one side, a warning when test rows leak from training, and a content hash of the rows."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pandas as pd

from core.data.checks import COLUMNS, Issue


def _group_column(df: pd.DataFrame, group_column: str | None) -> str:
    if group_column is None:
        group_column = next((c for c in ("query", "doc1") if c in df.columns), df.columns[0])
    if group_column not in df.columns:
        raise ValueError(f"group column {group_column!r} not in the data (columns: {', '.join(df.columns)})")
    return group_column


def _count(size: float, n: int, what: str) -> int:
    if size < 0:
        raise ValueError(f"{what} must not be negative, got {size}")
    if size > 1:
        return int(size)
    return max(1, int(round(size * n))) if size > 0 and n else 0  # a fraction asked for something: at least a row


MAX_TEST_SHARE = 0.2  # a test_size larger than the data is capped to this share of the distinct queries...
MIN_TEST_QUERIES = 5  # ...and with fewer distinct queries than this, evaluation runs on the training pairs


def split_dataset(
    df: pd.DataFrame,
    sample_size: float | None,
    test_size: float,
    seed: int,
    group_column: str | None = None,
    notes: list[str] | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Seeded sample (count if >1, else fraction), then a group-aware train/test split: rows sharing a
    `group_column` value (default query/doc1) all land on one side, so no test query was seen in training.

    A sample_size or test_size larger than the data is capped, and what was used is appended to `notes`: the test
    split then takes at most MAX_TEST_SHARE of the queries; with fewer than MIN_TEST_QUERIES distinct queries the
    test split is the training rows themselves (marked `test.attrs["on_train"]`)."""
    notes = notes if notes is not None else []
    if sample_size is not None:
        asked = _count(sample_size, len(df), "sample_size")
        n = min(asked, len(df))
        if asked > len(df):
            notes.append(f"sample_size={_num(sample_size)} is larger than the data: used all {len(df)} rows")
        keep = np.sort(np.random.default_rng(seed).choice(len(df), size=n, replace=False))
        df = df.iloc[keep]  # sorted positions: file order is kept, only the choice is random
    column = _group_column(df, group_column)
    target = _count(test_size, len(df), "test_size")
    sizes = df.groupby(column, sort=False, dropna=False).size()
    if target >= len(df) and len(df):
        if len(sizes) < MIN_TEST_QUERIES:
            notes.append(
                f"test_size={_num(test_size)} leaves no training rows out of {len(df)} and only {len(sizes)} "
                "distinct queries: evaluating on the training pairs (scores will look better than they are)"
            )
            test = df.reset_index(drop=True)
            train = test.copy()
            test.attrs["on_train"] = True
            return train, test
        groups = max(1, int(len(sizes) * MAX_TEST_SHARE))
        target = int(sizes.sort_values().iloc[:groups].sum())
        notes.append(
            f"test_size={_num(test_size)} is larger than the data ({len(df)} rows): used {groups} of "
            f"{len(sizes)} queries for the test split (at most {MAX_TEST_SHARE:.0%})"
        )
    order = np.random.default_rng(seed).permutation(len(sizes))
    chosen, taken = [], 0
    for i in order:
        size = int(sizes.iat[i])
        if taken >= target:
            break
        # take a group if that lands nearer the target than skipping it, and never empty the training side
        if taken + size - target <= target - taken and taken + size < len(df):
            chosen.append(sizes.index[i])
            taken += size
    if target and not chosen:  # every group overshot: fall back to the smallest one that leaves training rows
        small = sizes[sizes < len(df)]
        if len(small):
            chosen = [small.idxmin()]
    in_test = df[column].isin(chosen)
    return df[~in_test].reset_index(drop=True), df[in_test].reset_index(drop=True)


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def _normalised(texts: pd.Series) -> set[str]:
    """Texts as a reader compares them: case and runs of whitespace ignored."""
    return {" ".join(str(t).split()).casefold() for t in texts}


def overlap_warning(train: pd.DataFrame, test: pd.DataFrame) -> Issue | None:
    """A warning when test rows leak from training: a query on both sides (after normalising case and whitespace,
    which the split's grouping by exact text does not), a document that is a positive on both sides (the test then
    asks for a document the model was taught to retrieve), or identical rows."""
    if not len(train) or not len(test):
        return None
    column = _group_column(test, None)
    parts = []
    shared = _normalised(train[column]) & _normalised(test[column])
    if shared:
        parts.append(
            f"{len(shared)} {column} texts appear in both train and test (ignoring case and spacing), "
            f"e.g. {min(shared)[:80]!r}"
        )
    positive = next((c for c in ("document", "positive") if c in test.columns and c in train.columns), None)
    if positive:
        docs = _normalised(train[positive]) & _normalised(test[positive])
        if docs:
            parts.append(f"{len(docs)} documents are a positive in both train and test, e.g. {min(docs)[:80]!r}")
    cols = [c for c in test.columns if not str(c).startswith("_") and c in train.columns]
    same = test.merge(train[cols].drop_duplicates(), on=cols, how="inner") if cols else test.iloc[:0]
    if len(same):
        parts.append(f"{len(same)} test rows are identical to training rows")
    if not parts:
        return None
    return Issue(f"train/test overlap: {'; '.join(parts)}; test scores will look better than they are")


def dataset_hash(df: pd.DataFrame) -> str:
    """sha256 (16 hex chars) of the canonical columns, row order included; ignores the index, `_line` and extras."""
    fmt = next((f for f, cols in COLUMNS.items() if set(cols) <= set(df.columns)), None)
    cols = COLUMNS[fmt] if fmt else [c for c in df.columns if not str(c).startswith("_")]
    digest = hashlib.sha256(json.dumps(cols).encode())
    for row in df[cols].itertuples(index=False):
        # plain Python values: numpy scalars and int-vs-float scores must not change the hash
        values = [
            float(v) if c == "similarity" else v.item() if isinstance(v, np.generic) else v
            for c, v in zip(cols, row, strict=True)
        ]
        digest.update(b"\n" + json.dumps(values, ensure_ascii=False, default=str).encode())
    return digest.hexdigest()[:16]

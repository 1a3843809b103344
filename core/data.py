"""Training data: read JSONL/JSON/CSV/TSV/Parquet/`datasets` folders, validate them line by line, split and hash.

Three formats (see COLUMNS): query/document pairs, query/positive/negative triplets, doc1/doc2/similarity scored
pairs. A file with any error is rejected as a whole; `validate_file` explains every problem with its line number.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from core.data_checks import (
    ALIASES,
    COLUMNS,
    Format,
    Issue,
    IssueList,
    check_records,
    compute_stats,
    kind,
    length_warnings,
    positive_column,
    row_warnings,
    token_lengths,
)

__all__ = [
    "ALIASES",
    "COLUMNS",
    "DataError",
    "Format",
    "Issue",
    "ValidationReport",
    "compute_stats",
    "dataset_hash",
    "positive_column",
    "load_dataset",
    "overlap_warning",
    "read_texts",
    "split_dataset",
    "token_lengths",
    "validate_file",
]

SUFFIXES = (".jsonl", ".ndjson", ".json", ".csv", ".tsv", ".parquet")
TEXT_COLUMNS = ("text", "document", "content", "passage", "positive", "answer")  # read_texts looks for these first
Records = list[tuple[int, dict[str, Any]]]


@dataclass
class _Source:
    """What a reader found: records numbered by source line (or row), plus the header of tabular files."""

    records: Records = field(default_factory=list)
    total: int = 0  # records in the file, including the ones that could not be parsed
    header: list[str] | None = None
    header_line: int | None = None
    from_text: bool = False  # CSV/TSV: every cell is a string, so numbers arrive as text


@dataclass
class ValidationReport:
    """Everything `validate_file` found. `data` holds the canonical rows (+ `_line`) only when there is no error."""

    path: str
    format: Format | None
    rows: int
    errors: list[Issue] = field(default_factory=list)
    warnings: list[Issue] = field(default_factory=list)
    stats: dict = field(default_factory=dict)
    data: pd.DataFrame | None = None

    @property
    def ok(self) -> bool:
        return not self.errors

    def to_dict(self) -> dict:
        return {
            "path": self.path,
            "format": self.format,
            "rows": self.rows,
            "ok": self.ok,
            "errors": [i.to_dict() for i in self.errors],
            "warnings": [i.to_dict() for i in self.warnings],
            "stats": self.stats,
        }

    def to_text(self) -> str:
        verdict = "OK" if self.ok else f"REJECTED ({len(self.errors)} error{'s' * (len(self.errors) != 1)})"
        rows = f"{self.rows} row{'s' * (self.rows != 1)}"
        out = [f"{self.path}: {self.format or 'unknown format'}, {rows}: {verdict}"]
        for title, issues in (("Errors", self.errors), ("Warnings", self.warnings)):
            if issues:
                out.append(f"{title}:")
                out += [f"  {self.path}: {issue}" for issue in issues]
        out += _stats_lines(self.stats)
        return "\n".join(out)


class DataError(ValueError):
    """A dataset that failed validation; `report` says why."""

    def __init__(self, report: ValidationReport):
        self.report = report
        shown = "\n".join(f"  - {i}" for i in report.errors[:10])
        more = f"\n  … see the full report ({len(report.errors)} errors)" if len(report.errors) > 10 else ""
        super().__init__(f"invalid dataset {report.path}:\n{shown}{more}")


def _stats_lines(stats: dict) -> list[str]:
    out = []
    for col, s in stats.get("char_lengths", {}).items():
        out.append(
            f"  {col}: {stats.get(f'distinct_{col}', '?')} distinct, "
            f"characters p50 {s['p50']}, p95 {s['p95']}, max {s['max']}"
        )
    for col, s in stats.get("token_lengths", {}).items():
        over = f", {s['over_max']} over {s['max_seq_length']}" if s.get("over_max") is not None else ""
        sample = f" (sample of {s['n']})" if s["sampled"] else ""
        out.append(f"  {col}: tokens p50 {s['p50']}, p95 {s['p95']}, max {s['max']}{over}{sample}")
    if "similarity_histogram" in stats:
        h = stats["similarity_histogram"]
        out.append(f"  similarity: mean {h['mean']}, counts per 0.1 bin {h['counts']}")
    return ["Stats:"] + out if out else []


# ---------------------------------------------------------------- reading: every record keeps its source line


def _decode(path: Path, errors: IssueList) -> str | None:
    """UTF-8 (BOM optional) text, or None after reporting why not. Lines are counted on the raw bytes."""
    data = path.read_bytes()
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        errors.add("UTF-16 text: save the file as UTF-8")
        return None
    nul = data.find(b"\x00")
    if nul >= 0:
        errors.add("binary content (NUL byte): not a text file", data.count(b"\n", 0, nul) + 1)
        return None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        errors.add(f"not valid UTF-8 text (byte 0x{data[exc.start]:02x})", data.count(b"\n", 0, exc.start) + 1)
        return None
    if not text.strip():
        errors.add("the file is empty")
        return None
    return text


def _read_jsonl(text: str, errors: IssueList) -> _Source:
    src = _Source()
    for number, raw in enumerate(text.split("\n"), start=1):  # split on \n only: physical lines as editors count
        if not raw.strip():
            continue  # blank lines (often a trailing one) are harmless
        src.total += 1
        hint = " (the file looks like a JSON array: use the .json extension)" if raw.lstrip().startswith("[") else ""
        try:
            obj = json.loads(raw)
        except json.JSONDecodeError as exc:
            errors.add(f"invalid JSON: {exc.msg} (column {exc.colno}){hint}", number)
            continue
        if isinstance(obj, dict):
            src.records.append((number, obj))
        else:
            errors.add(f"expected a JSON object, got {kind(obj)}{hint}", number)
    return src


_SPACE = re.compile(r"[ \t\n\r]*")


def _record_lines(text: str) -> list[int]:
    """The line where each element of a (valid) top-level JSON array starts: json.loads does not say."""
    decoder, lines = json.JSONDecoder(), []
    pos = _SPACE.match(text, text.index("[") + 1).end()
    line, counted = 1, 0
    while text[pos] != "]":
        line += text.count("\n", counted, pos)
        counted = pos
        lines.append(line)
        _, end = decoder.raw_decode(text, pos)
        pos = _SPACE.match(text, end).end()
        if text[pos] == ",":
            pos = _SPACE.match(text, pos + 1).end()
    return lines


def _read_json(text: str, errors: IssueList) -> _Source:
    try:
        top = json.loads(text)
    except json.JSONDecodeError as exc:
        hint = " (several JSON values: is this JSON Lines? use the .jsonl extension)" if exc.msg == "Extra data" else ""
        errors.add(f"invalid JSON: {exc.msg} (column {exc.colno}){hint}", exc.lineno)
        return _Source()
    if not isinstance(top, list):
        keys = f" with keys {', '.join(list(top)[:5])}" if isinstance(top, dict) else ""
        errors.add(f"expected a JSON array of records, got {kind(top)}{keys}")
        return _Source()
    lines, src = _record_lines(text), _Source(total=len(top))
    if top and not any(isinstance(r, dict) for r in top):
        kinds = sorted({kind(r).removeprefix("a ").removeprefix("an ") + "s" for r in top})  # "a string" -> "strings"
        errors.add(f"expected a list of records (JSON objects), got a list of {' and '.join(kinds)}", lines[0])
        return src
    for line, obj in zip(lines, top, strict=True):
        if isinstance(obj, dict):
            src.records.append((line, obj))
        else:
            errors.add(f"expected a JSON object, got {kind(obj)}", line)
    return src


_CSV_PROBLEMS = {  # the csv module's wording, said in terms of the user's file
    "unexpected end of data": "unclosed quote: the quoted field starting here runs to the end of the file",
    "new-line character seen in unquoted field": "a bare carriage return (\\r) inside an unquoted field",
}


def _read_csv(text: str, delimiter: str, errors: IssueList) -> _Source:
    """csv.reader rather than pandas: reader.line_num gives physical lines even with quoted newlines."""
    reader = csv.reader(io.StringIO(text), delimiter=delimiter, strict=True)  # strict: stray quotes are errors
    src, previous = _Source(from_text=True), 0
    old_limit = csv.field_size_limit(2**31 - 1)  # the 128 KiB default rejects long documents
    try:
        while True:
            try:
                row = next(reader)
            except StopIteration:
                break
            except csv.Error as exc:  # the reader resumes on the next line, so keep collecting
                start, previous = previous + 1, reader.line_num
                problem = next((v for k, v in _CSV_PROBLEMS.items() if str(exc).startswith(k)), str(exc))
                errors.add(f"malformed {'TSV' if delimiter == chr(9) else 'CSV'}: {problem}", start)
                src.total += src.header is not None
                continue
            start, previous = previous + 1, reader.line_num  # a record starts right after the previous one ends
            if not row:
                continue
            if src.header is None:
                src.header, src.header_line = [h.strip() for h in row], start
                continue
            src.total += 1
            if len(row) != len(src.header):
                errors.add(f"expected {len(src.header)} fields as in the header, found {len(row)}", start)
            else:
                src.records.append((start, dict(zip(src.header, row, strict=True))))
    finally:
        csv.field_size_limit(old_limit)
    return src


def _read_table(path: Path, errors: IssueList) -> _Source:
    """Parquet files and `datasets` folders: typed columns, rows numbered from 1."""
    if path.is_dir():
        try:
            import datasets  # imported here: it is slow to import and only needed for folders

            ds = datasets.load_from_disk(str(path))
        except Exception as exc:  # load_from_disk raises many kinds for a folder that is not a dataset
            errors.add(f"not a dataset folder saved with datasets' save_to_disk ({type(exc).__name__}: {exc})")
            return _Source()
        if isinstance(ds, datasets.DatasetDict):
            if "train" not in ds and len(ds) != 1:
                errors.add(f"a DatasetDict without a 'train' split (splits: {', '.join(ds)})")
                return _Source()
            ds = ds["train"] if "train" in ds else next(iter(ds.values()))
        return _Source(list(enumerate(ds.to_list(), start=1)), len(ds), list(ds.column_names))
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except (pa.ArrowException, OSError, ValueError) as exc:
        errors.add(f"not a valid Parquet file ({exc})")
        return _Source()
    return _Source(list(enumerate(table.to_pylist(), start=1)), table.num_rows, list(table.column_names))


def _read(path: Path, errors: IssueList) -> _Source:
    suffix = path.suffix.lower()
    if path.is_dir() or suffix == ".parquet":
        errors.row_based = True
        return _read_table(path, errors)
    text = _decode(path, errors)
    if text is None:
        return _Source()
    if suffix in (".csv", ".tsv"):
        return _read_csv(text, "\t" if suffix == ".tsv" else ",", errors)
    return (_read_json if suffix == ".json" else _read_jsonl)(text, errors)


# ---------------------------------------------------------------- public API


def validate_file(
    path: str | Path,
    format: Format | None = None,
    tokenizer: Any = None,
    max_seq_length: int | None = None,
    max_errors: int = 200,
) -> ValidationReport:
    """Read, detect the format, check every row and compute stats. Bad content never raises: see the report."""
    if format == "auto":
        format = None
    if format is not None and format not in COLUMNS:
        raise ValueError(f"unknown format {format!r}: use one of {', '.join(COLUMNS)} (or None to detect)")
    path = Path(path)
    errors = IssueList(max_errors)
    report = ValidationReport(str(path), None, 0)
    if not path.exists():
        errors.add(f"file not found: {path}")
    elif not path.is_dir() and path.suffix.lower() not in SUFFIXES:
        errors.add(
            f"unsupported file type '{path.suffix}': supported are {', '.join(SUFFIXES)} "
            "or a folder saved with datasets' save_to_disk"
        )
    else:
        src = _read(path, errors)
        report.rows = src.total
        if not src.total and not len(errors):
            errors.add("no records: the file holds no data rows")
        if src.records:
            fmt, frame, warnings = check_records(
                src.records, src.header, src.header_line, format, errors, src.from_text
            )
            report.format = fmt
            if fmt is not None:
                names = dict(zip(COLUMNS[fmt], _written_names(src.records, fmt), strict=True))
                report.stats = compute_stats(frame, fmt, tokenizer, max_seq_length)
                report.warnings = warnings + row_warnings(frame, fmt, errors.row_based, report.rows)
                report.warnings += length_warnings(report.stats, len(frame), names)
                if not len(errors):
                    report.data = frame
    report.errors = errors.finish()
    return report


def _written_names(records: Records, fmt: str) -> list[str]:
    """The column names as the file spells them (e.g. 'Answer' for document), for messages."""
    for _, record in records:
        lower = {k.strip().lower(): k for k in reversed(list(record))}
        for alias in ALIASES[fmt]:
            if set(alias) <= set(lower):
                return [lower[c] for c in alias]
    return COLUMNS[fmt]


def load_dataset(
    path: str | Path, format: Format | None = None, tokenizer: Any = None, max_seq_length: int | None = None
) -> pd.DataFrame:
    """The validated canonical rows of a file; raises DataError (with `.report`) when it has any error."""
    report = validate_file(path, format, tokenizer, max_seq_length)
    if not report.ok:
        raise DataError(report)
    assert report.data is not None
    return report.data


def read_texts(path: str | Path) -> list[str]:
    """Corpus texts: a .txt file (one per line) or a data file's text/document/… column. Blank and repeats dropped."""
    path = Path(path)
    errors = IssueList(10)
    if path.suffix.lower() == ".txt" and path.is_file():
        text = _decode(path, errors)
        texts = [] if text is None else text.split("\n")
        lines = list(range(1, len(texts) + 1))
    elif not path.exists():
        raise ValueError(f"corpus file not found: {path}")
    elif not path.is_dir() and path.suffix.lower() not in SUFFIXES:
        raise ValueError(f"unsupported corpus file {path}: use .txt or one of {', '.join(SUFFIXES)}")
    else:
        src = _read(path, errors)
        columns = src.header or list(dict.fromkeys(k for _, rec in src.records for k in rec))
        column = _text_column(columns, src.records)
        if column is None and not len(errors):
            raise ValueError(f"no text column in {path}: name one of {', '.join(TEXT_COLUMNS)}")
        texts = [rec.get(column) for _, rec in src.records]
        lines = [line for line, _ in src.records]
    for line, t in zip(lines, texts):
        if isinstance(t, str) and _is_surrogate_text(t):
            raise ValueError(f"{path}: line {line}: text contains a lone UTF-16 surrogate (not valid text)")
    if len(errors):
        raise ValueError(f"cannot read corpus {path}: " + "; ".join(str(i) for i in errors.finish()[:5]))
    out = dict.fromkeys(t.strip() for t in texts if isinstance(t, str) and t.strip())  # dict keeps first-seen order
    if not out:
        raise ValueError(f"no texts in corpus file {path}")
    return list(out)


def _is_surrogate_text(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _text_column(columns: list[str], records: Records) -> str | None:
    lower = {c.strip().lower(): c for c in reversed(columns)}
    for name in TEXT_COLUMNS:
        if name in lower:
            return lower[name]
    return next((c for c in columns if any(isinstance(r.get(c), str) for _, r in records[:100])), None)


def _group_column(df: pd.DataFrame, group_column: str | None) -> str:
    if group_column is None:
        group_column = next((c for c in ("query", "doc1") if c in df.columns), df.columns[0])
    if group_column not in df.columns:
        raise ValueError(f"group column {group_column!r} not in the data (columns: {', '.join(df.columns)})")
    return group_column


def _count(size: float, n: int, what: str) -> int:
    if size < 0:
        raise ValueError(f"{what} must not be negative, got {size}")
    return int(size) if size > 1 else int(round(size * n))


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


def overlap_warning(train: pd.DataFrame, test: pd.DataFrame) -> Issue | None:
    """A warning when test rows leak from training: the same query text on both sides, or identical rows."""
    if not len(train) or not len(test):
        return None
    column = _group_column(test, None)
    shared = set(train[column]) & set(test[column])
    cols = [c for c in test.columns if not str(c).startswith("_") and c in train.columns]
    same = test.merge(train[cols].drop_duplicates(), on=cols, how="inner") if cols else test.iloc[:0]
    parts = []
    if shared:
        parts.append(
            f"{len(shared)} {column} texts appear in both train and test, e.g. {str(min(shared, key=str))[:80]!r}"
        )
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

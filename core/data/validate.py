"""Training data: validate JSONL/JSON/CSV/TSV/Parquet/`datasets` folders line by line into a report.

Three formats (see COLUMNS): query/document pairs, query/positive/negative triplets, doc1/doc2/similarity scored
pairs. A file with any error is rejected as a whole; `validate_file` explains every problem with its line number.
Reading files is data_files.py's, checking rows data_checks.py's, splitting and hashing split.py's; their public
names are importable from here too.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from core.data.checks import (
    ALIASES,
    COLUMNS,
    Format,
    Issue,
    IssueList,
    check_records,
    compute_stats,
    huge_cell_warnings,
    length_warnings,
    positive_column,
    row_warnings,
    token_lengths,
)
from core.data.files import SUFFIXES, Records, read_records, read_texts
from core.data.split import dataset_hash, overlap_warning, split_dataset

__all__ = [
    "ALIASES",
    "COLUMNS",
    "SUFFIXES",
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
        src = read_records(path, errors)
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
                report.warnings += huge_cell_warnings(frame, names)
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

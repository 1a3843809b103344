"""Helpers shared by the core.data tests: write real files, build rows, read issues back."""

from __future__ import annotations

import json
from pathlib import Path

from core.data.validate import (
    Issue,
    ValidationReport,
)


def write(path: Path, content: str | bytes) -> Path:
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_bytes(content.encode("utf-8"))  # write_bytes: no newline translation, CRLF stays CRLF
    return path


def jsonl(rows: list[dict]) -> str:
    return "".join(json.dumps(r) + "\n" for r in rows)


def pairs(n: int, start: int = 0) -> list[dict]:
    return [{"query": f"question {i}", "document": f"answer number {i}"} for i in range(start, start + n)]


def error_text(report: ValidationReport) -> str:
    assert not report.ok, report.to_text()
    return report.to_text()


def only_error(report: ValidationReport) -> Issue:
    assert len(report.errors) == 1, report.to_text()
    return report.errors[0]


def assert_issue(
    report: ValidationReport, line: int | None, field: str | None, words: str, row_based: bool = False
) -> Issue:
    """An error naming `line`/`field` exists, says `words`, and the text report shows it with the file name."""
    assert report.data is None
    matches = [i for i in report.errors if i.line == line and i.field == field and words in i.message]
    assert matches, f"no error at {line}/{field} with {words!r} in:\n{report.to_text()}"
    text = str(matches[0])
    if line is not None:
        assert f"{'row' if row_based else 'line'} {line}" in text
    if field is not None:
        assert f"field '{field}'" in text
    assert f"{report.path}: {text}" in report.to_text()
    return matches[0]


class FakeTokenizer:
    """Whitespace tokens plus [CLS]/[SEP], called like a Hugging Face tokenizer."""

    def __init__(self):
        self.calls = 0

    def __call__(self, texts: list[str], add_special_tokens: bool = True, **_: object) -> dict:
        self.calls += 1
        return {"input_ids": [[0] * (len(t.split()) + 2 * add_special_tokens) for t in texts]}

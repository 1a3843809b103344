"""Reading data files: JSONL/JSON/CSV/TSV/Parquet and `datasets` folders into records that keep their source line
(or row), so every message can name it; and `read_texts` for corpus files. Checking the records is data_checks.py's,
the report data.py's."""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.data.checks import IssueList, kind

SUFFIXES = (".jsonl", ".ndjson", ".json", ".csv", ".tsv", ".parquet")
TEXT_COLUMNS = ("text", "document", "content", "passage", "positive", "answer")  # read_texts looks for these first
Records = list[tuple[int, dict[str, Any]]]


@dataclass
class Source:
    """What a reader found: records numbered by source line (or row), plus the header of tabular files."""

    records: Records = field(default_factory=list)
    total: int = 0  # records in the file, including the ones that could not be parsed
    header: list[str] | None = None
    header_line: int | None = None
    from_text: bool = False  # CSV/TSV: every cell is a string, so numbers arrive as text


def encoding_hint(data: bytes) -> str:
    """How to fix a file that is not UTF-8: most such files are Windows/Latin-1 exports (cp1252), e.g. from Excel."""
    try:
        data.decode("cp1252")
        guess = "It looks like Windows-1252 (cp1252, Latin-1), as Excel and older Windows tools save it. "
    except UnicodeDecodeError:
        guess = ""
    return (
        guess + "Save it as UTF-8: in Excel 'Save As' → 'CSV UTF-8'; in LibreOffice tick 'Edit filter settings' and "
        "pick Unicode (UTF-8); or run `iconv -f cp1252 -t utf-8 in.csv > out.csv`."
    )


def _decode(path: Path, errors: IssueList) -> str | None:
    """UTF-8 (BOM optional) text, or None after reporting why not. Lines are counted on the raw bytes."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        errors.add(f"cannot read the file: {exc.strerror or exc}")
        return None
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
        errors.add(
            f"not valid UTF-8 text (byte 0x{data[exc.start]:02x}). {encoding_hint(data)}",
            data.count(b"\n", 0, exc.start) + 1,
        )
        return None
    if not text.strip():
        errors.add("the file is empty")
        return None
    return text


class _DuplicateKey(ValueError):
    pass


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    for key, value in pairs:
        if key in seen:  # json keeps the last one silently: the user meant one of them, we cannot know which
            raise _DuplicateKey(key)
        seen[key] = value
    return seen


def _loads(text: str) -> tuple[Any, str | None]:
    """(value, None), or (None, why) for nesting too deep for the parser or a key given twice in one object;
    JSONDecodeError propagates, with its position."""
    try:
        return json.loads(text, object_pairs_hook=_unique_keys), None
    except RecursionError:
        return None, "invalid JSON: nested too deeply"
    except _DuplicateKey as exc:
        return None, f"field '{exc}' appears twice in one object"


def _read_jsonl(text: str, errors: IssueList) -> Source:
    src = Source()
    for number, raw in enumerate(text.split("\n"), start=1):  # split on \n only: physical lines as editors count
        if not raw.strip():
            continue  # blank lines (often a trailing one) are harmless
        src.total += 1
        hint = " (the file looks like a JSON array: use the .json extension)" if raw.lstrip().startswith("[") else ""
        try:
            obj, why = _loads(raw)
        except json.JSONDecodeError as exc:
            errors.add(f"invalid JSON: {exc.msg} (column {exc.colno}){hint}", number)
            continue
        if why:
            errors.add(why, number)
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


def _read_json(text: str, errors: IssueList) -> Source:
    try:
        top, why = _loads(text)
    except json.JSONDecodeError as exc:
        hint = " (several JSON values: is this JSON Lines? use the .jsonl extension)" if exc.msg == "Extra data" else ""
        errors.add(f"invalid JSON: {exc.msg} (column {exc.colno}){hint}", exc.lineno)
        return Source()
    if why:
        errors.add(why)
        return Source()
    if not isinstance(top, list):
        keys = f" with keys {', '.join(list(top)[:5])}" if isinstance(top, dict) else ""
        errors.add(f"expected a JSON array of records, got {kind(top)}{keys}")
        return Source()
    lines, src = _record_lines(text), Source(total=len(top))
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


def _read_csv(text: str, delimiter: str, errors: IssueList) -> Source:
    """csv.reader rather than pandas: reader.line_num gives physical lines even with quoted newlines."""
    reader = csv.reader(io.StringIO(text), delimiter=delimiter, strict=True)  # strict: stray quotes are errors
    src, previous = Source(from_text=True), 0
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
                twice = sorted({h for h in src.header if src.header.count(h) > 1})
                if twice:  # a row dict would keep the last column of a name: the wrong text, trained on silently
                    errors.add(f"column {', '.join(map(repr, twice))} appears twice in the header", start)
                    return src
                continue
            src.total += 1
            if len(row) != len(src.header):
                errors.add(f"expected {len(src.header)} fields as in the header, found {len(row)}", start)
            else:
                src.records.append((start, dict(zip(src.header, row, strict=True))))
    finally:
        csv.field_size_limit(old_limit)
    return src


def _read_table(path: Path, errors: IssueList) -> Source:
    """Parquet files and `datasets` folders: typed columns, rows numbered from 1."""
    if path.is_dir():
        try:
            import datasets  # imported here: it is slow to import and only needed for folders

            ds = datasets.load_from_disk(str(path))
        except Exception as exc:  # load_from_disk raises many kinds for a folder that is not a dataset
            errors.add(f"not a dataset folder saved with datasets' save_to_disk ({type(exc).__name__}: {exc})")
            return Source()
        if isinstance(ds, datasets.DatasetDict):
            if "train" not in ds and len(ds) != 1:
                errors.add(f"a DatasetDict without a 'train' split (splits: {', '.join(ds)})")
                return Source()
            ds = ds["train"] if "train" in ds else next(iter(ds.values()))
        return Source(list(enumerate(ds.to_list(), start=1)), len(ds), list(ds.column_names))
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except (pa.ArrowException, OSError, ValueError) as exc:
        errors.add(f"not a valid Parquet file ({exc})")
        return Source()
    return Source(list(enumerate(table.to_pylist(), start=1)), table.num_rows, list(table.column_names))


def read_records(path: Path, errors: IssueList) -> Source:
    suffix = path.suffix.lower()
    if path.exists() and not path.is_dir() and not path.is_file():  # a FIFO or device would block the read forever
        errors.add("not a regular file")
        return Source()
    if path.is_dir() or suffix == ".parquet":
        errors.row_based = True
        return _read_table(path, errors)
    text = _decode(path, errors)
    if text is None:
        return Source()
    if suffix in (".csv", ".tsv"):
        return _read_csv(text, "\t" if suffix == ".tsv" else ",", errors)
    return (_read_json if suffix == ".json" else _read_jsonl)(text, errors)


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
        src = read_records(path, errors)
        columns = src.header or list(dict.fromkeys(k for _, rec in src.records for k in rec))
        column = _text_column(columns, src.records)
        if column is None and not len(errors):
            strings = _string_columns(columns, src.records)
            found = f" (text columns found: {', '.join(strings)}; which one is the document?)" if strings else ""
            raise ValueError(f"no text column in {path}: name one of {', '.join(TEXT_COLUMNS)}{found}")
        texts = [rec.get(column) for _, rec in src.records]
        lines = [line for line, _ in src.records]
        for line, t in zip(lines, texts):  # a list or a number is an error, not a lost row; null is a blank
            if t is not None and not isinstance(t, str):
                errors.add(f"expected text, got {kind(t)}", line, column)
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
    strings = _string_columns(columns, records)
    return strings[0] if len(strings) == 1 else None  # several candidates: guessing could index the titles


def _string_columns(columns: list[str], records: Records) -> list[str]:
    return [c for c in columns if any(isinstance(r.get(c), str) for _, r in records[:100])]

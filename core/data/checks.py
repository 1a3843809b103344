"""Row-level checks, format detection, warnings and statistics for training data.

`core.data.files` reads files into numbered records; this module decides what the records mean. Everything here is
re-exported by `core.data.validate`, which is the module other code should import.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

Format = Literal["pairs", "triplets", "scored"]
COLUMNS: dict[str, list[str]] = {
    "pairs": ["query", "document"],
    "triplets": ["query", "positive", "negative"],
    "scored": ["doc1", "doc2", "similarity"],
}


def positive_column(fmt: str) -> str:
    """The column holding a query's relevant document: "document" in pairs, "positive" in triplets."""
    return COLUMNS[fmt][1]


# Accepted column names, position i maps to COLUMNS[format][i]. Checked in this order, so the three-column
# triplet names win over the pair names they contain (anchor/positive/negative also holds anchor/positive).
ALIASES: dict[str, list[tuple[str, ...]]] = {
    "triplets": [("query", "positive", "negative"), ("anchor", "positive", "negative")],
    "scored": [("doc1", "doc2", "similarity"), ("sentence1", "sentence2", "score"), ("text1", "text2", "label")],
    # title/text last: only a file with no other pair names is read as (title = query, text = document).
    "pairs": [
        ("query", "document"),
        ("question", "answer"),
        ("query", "answer"),
        ("question", "context"),
        ("anchor", "positive"),
        ("query", "positive"),
        ("title", "text"),
    ],
}
MIN_ROWS = 50  # below this, warn: fine-tuning on a few dozen pairs mostly overfits
MANY_DOCUMENTS = 10  # a query with more distinct documents than this gets a warning
TOKEN_SAMPLE = 5000  # texts tokenized per field for statistics


@dataclass
class Issue:
    """One error or warning. `line` is the 1-based physical line, or the row number when `row_based`."""

    message: str
    line: int | None = None
    field: str | None = None
    row_based: bool = False

    def __str__(self) -> str:
        where = [f"{'row' if self.row_based else 'line'} {self.line}"] if self.line is not None else []
        if self.field is not None:
            where.append(f"field '{self.field}'")
        return f"{', '.join(where)}: {self.message}" if where else self.message

    def to_dict(self) -> dict[str, Any]:
        return {"line": self.line, "field": self.field, "message": self.message, "row_based": self.row_based}


class IssueList:
    """Collects errors up to a limit, then only counts them (a broken 1M-row file must not give 1M lines)."""

    def __init__(self, limit: int = 200, row_based: bool = False):
        self.limit, self.row_based = limit, row_based
        self.items: list[Issue] = []
        self.dropped = 0

    def add(self, message: str, line: int | None = None, field: str | None = None) -> None:
        if len(self.items) < self.limit:
            self.items.append(Issue(message, line, field, self.row_based and line is not None))
        else:
            self.dropped += 1

    def __len__(self) -> int:
        return len(self.items) + self.dropped

    def finish(self) -> list[Issue]:
        # File-level issues first, then by line, so the report reads top to bottom like the file.
        out = sorted(self.items, key=lambda i: (i.line is not None, i.line or 0))
        if self.dropped:
            out.append(Issue(f"… and {self.dropped} more errors"))
        return out


def kind(value: Any) -> str:
    """How a JSON-ish value is named in messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    return {str: "a string", dict: "an object", list: "an array"}.get(type(value), type(value).__name__)


def describe(alias: tuple[str, ...]) -> str:
    fmt = next(f for f, sets in ALIASES.items() if alias in sets)
    return f"{fmt} ({', '.join(alias)})"


def match_alias(keys: set[str], forced: str | None = None) -> tuple[str, ...] | None:
    """The first accepted column set fully present in `keys` (lower-cased), optionally of one format only."""
    for fmt, sets in ALIASES.items():
        if forced in (None, fmt):
            for alias in sets:
                if set(alias) <= keys:
                    return alias
    return None


def expected(forced: str | None = None) -> str:
    fmts = [forced] if forced else list(COLUMNS)
    return "; ".join(f"{f}: " + " | ".join(", ".join(a) for a in ALIASES[f]) for f in fmts)


def closest(keys: set[str], forced: str | None = None) -> str:
    """A hint naming the accepted column set that is nearest to what the file has."""
    sets = [a for f, s in ALIASES.items() if forced in (None, f) for a in s]
    best = max(sets, key=lambda a: (len(set(a) & keys), -len(set(a) - keys)))  # most shared, then fewest missing
    if not set(best) & keys:
        return f"expected the columns of one of {expected(forced)}"
    missing = ", ".join(f"'{c}'" for c in best if c not in keys)
    return f"closest is {describe(best)}: missing {missing}"


def text_problem(value: Any) -> str | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "missing text (null)"
    if not isinstance(value, str):
        return f"expected text, got {kind(value)} ({str(value)[:40]})"
    if not value.strip():
        return "whitespace-only text" if value else "empty text"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:  # a lone surrogate such as "\ud800" from JSON: not text any tool can store
        return f"invalid character {value[exc.start]!r} at position {exc.start} (a lone UTF-16 surrogate)"
    return None


def score_value(value: Any, from_text: bool) -> tuple[float | None, str | None]:
    """Parse a similarity score. CSV/TSV cells are strings by nature; typed sources must hold real numbers."""
    if value is None:
        return None, "missing similarity (null)"
    if isinstance(value, bool):
        return None, f"similarity must be a number, got a boolean ({value})"
    if isinstance(value, str) and from_text:
        if not value.strip():
            return None, "missing similarity (empty)"
        try:
            number = float(value)
        except ValueError:
            return None, f"similarity must be a number, got {value[:40]!r}"
    elif isinstance(value, (int, float)):
        number = float(value) if abs(value) < 1e300 else math.inf  # float() of a huge JSON int would raise
    else:
        return None, f"similarity must be a number, got {kind(value)} ({str(value)[:40]})"
    if not math.isfinite(number):
        return None, f"similarity must be a finite number, got {str(value)[:40]}"
    return number, None


def _columns_of(keymaps, header: list[str] | None, header_line: int | None, forced: str | None, errors: IssueList):
    """The column names (an alias set) the file uses, or None with the error added: for a table its header decides;
    for JSON the column set most records use (the odd records out are reported row by row)."""
    if header is not None:
        alias = match_alias({h.strip().lower() for h in header}, forced)
        if alias is None:
            keys = {h.strip().lower() for h in header}
            what = f"missing column(s) for format '{forced}'" if forced else "cannot detect the format"
            cols = ", ".join(f"'{h}'" for h in header)
            errors.add(f"{what} from the header columns {cols}: {closest(keys, forced)}", header_line)
        return alias
    votes = Counter(a for a in (match_alias(set(m), forced) for m in keymaps) if a is not None)
    if not votes:
        keys = set().union(*keymaps) if keymaps else set()
        found = ", ".join(f"'{k}'" for k in sorted(keys)) or "none"
        what = f"no record has the fields of format '{forced}'" if forced else "cannot detect the format"
        errors.add(f"{what} (fields found: {found}): {closest(keys, forced)}")
        return None
    return votes.most_common(1)[0][0]


def check_records(
    records: list[tuple[int, dict[str, Any]]],
    header: list[str] | None,
    header_line: int | None,
    forced: str | None,
    errors: IssueList,
    from_text: bool,
) -> tuple[str | None, pd.DataFrame, list[Issue]]:
    """Detect the format and check every record. Returns (format, valid rows as a canonical frame, warnings)."""
    keymaps = [{k.strip().lower(): k for k in reversed(list(rec))} for _, rec in records]  # first spelling wins
    alias = _columns_of(keymaps, header, header_line, forced, errors)
    if alias is None:
        return None, pd.DataFrame(), []
    fmt = next(f for f, sets in ALIASES.items() if alias in sets)
    canon = COLUMNS[fmt]
    rows: list[list[Any]] = []
    score_fields: list[str] = []
    extra: dict[str, None] = {}
    for (line, rec), keymap in zip(records, keymaps, strict=True):
        if not set(alias) <= set(keymap):
            other = match_alias(set(keymap))
            if other is not None:  # a whole record of another format (or other column names): mixed file
                errors.add(
                    f"looks like {describe(other)}, but this file is {describe(alias)}: one file must hold one format",
                    line,
                )
            for col in [] if other else [c for c in alias if c not in keymap]:
                errors.add("missing field", line, col)
            continue
        names = [keymap[c] for c in alias]
        values, bad = [], False
        for i, name in enumerate(names):
            value = rec[name]
            if canon[i] == "similarity":
                value, problem = score_value(value, from_text)
            else:
                problem = text_problem(value)
            if problem:
                errors.add(problem, line, name)
                bad = True
            values.append(value)
        if fmt == "triplets" and not bad and values[1].strip() == values[2].strip():
            errors.add("negative is the same text as positive", line, names[2])
            bad = True
        if not bad:
            rows.append(values + [line])
            score_fields.append(names[-1])
            extra.update((k, None) for k in rec if k not in names)
    frame = pd.DataFrame(rows, columns=canon + ["_line"])
    warnings: list[Issue] = []
    if fmt == "scored" and len(frame):
        warnings += _check_scale(frame, score_fields, errors)
    if extra:
        warnings.append(
            Issue(f"ignoring extra column(s) {', '.join(repr(k) for k in extra)}: only {', '.join(alias)} are used")
        )
    return fmt, frame, warnings


OUTLIER_SHARE = 0.1  # under this share of scores above 1, those are errors rather than a 0-5 scale


def _check_scale(frame: pd.DataFrame, fields: list[str], errors: IssueList) -> list[Issue]:
    """Scores must be in [0, 1]; a file whose scores all lie in [0, 5] with some above 1 is a 0–5 scale: divide by 5."""
    scores = frame["similarity"]
    outside = (scores < 0) | (scores > 5)
    # A few scores above 1 among scores in [0, 1] are typos, not a 0-5 scale: rescaling would shrink every score.
    above = scores > 1
    stray = above.any() and above.sum() < OUTLIER_SHARE * len(scores)
    where = " (the other scores lie in [0, 1])" if stray else ""
    if stray:
        outside = outside | above
    for pos in np.flatnonzero(outside.to_numpy()):
        errors.add(
            f"similarity {scores.iat[pos]:g} out of range{where}: scores must lie in [0, 1] (or all in [0, 5])",
            int(frame["_line"].iat[pos]),
            fields[pos],
        )
    frame.drop(frame.index[outside.to_numpy()], inplace=True)
    frame.reset_index(drop=True, inplace=True)
    if outside.any() or not (frame["similarity"] > 1).any():
        return []
    top = float(frame["similarity"].max())
    frame["similarity"] = frame["similarity"] / 5.0
    return [Issue(f"similarity scores go up to {top:g}, so they look like a 0–5 scale: all scores were divided by 5")]


def row_warnings(frame: pd.DataFrame, fmt: str, row_based: bool, total: int | None = None) -> list[Issue]:
    """Duplicates, crowded queries and too little data (`total` rows, default the frame's): never a reason to reject."""
    total = len(frame) if total is None else total
    out: list[Issue] = []
    unit = "rows" if row_based else "lines"
    dup = frame.duplicated(COLUMNS[fmt])
    if dup.any():
        lines = ", ".join(str(n) for n in frame.loc[dup, "_line"].head(5))
        more = " …" if dup.sum() > 5 else ""
        out.append(Issue(f"{int(dup.sum())} duplicate rows repeat an earlier row ({unit} {lines}{more})"))
    if fmt in ("pairs", "triplets") and len(frame):
        doc = COLUMNS[fmt][1]
        counts = frame.groupby("query", sort=False)[doc].nunique()
        crowded = counts[counts > MANY_DOCUMENTS].sort_values(ascending=False)
        if len(crowded):
            first = frame.loc[frame["query"] == crowded.index[0], "_line"].iat[0]
            out.append(
                Issue(
                    f"{len(crowded)} {'query appears' if len(crowded) == 1 else 'queries appear'} with more than {MANY_DOCUMENTS} different documents, e.g. "
                    f"{crowded.index[0][:80]!r} with {crowded.iat[0]} (first at {unit[:-1]} {first}): in-batch "
                    "training may treat their other documents as negatives"
                )
            )
    if total < MIN_ROWS:
        out.append(
            Issue(
                f"only {total} row{'s' * (total != 1)}: very little data for fine-tuning; "
                "a few hundred pairs or more is recommended"
            )
        )
    return out


MAX_TOKENIZED_CHARS = 50_000  # far past any max_seq_length (8192 tokens at most): longer texts count as this
HUGE_CELL_CHARS = 100_000  # a text this long is a whole document in one cell: reported, it is almost all unread


def huge_cell_warnings(df: pd.DataFrame, names: dict[str, str]) -> list[Issue]:
    """One warning per text field holding texts over HUGE_CELL_CHARS, naming the longest one's line."""
    out = []
    for col in names:
        if col == "similarity" or col not in df:
            continue
        lengths = df[col].astype(str).str.len()
        huge = lengths > HUGE_CELL_CHARS
        if not huge.any():
            continue
        longest = lengths.idxmax()
        line = df["_line"].get(longest) if "_line" in df else None
        out.append(
            Issue(
                f"{int(huge.sum())} text{'s' * (int(huge.sum()) != 1)} over {HUGE_CELL_CHARS:,} characters (the "
                f"longest, here, has {int(lengths.max()):,}): a model reads only the "
                "first max_seq_length tokens of a text, so nearly all of it is ignored; split long documents into "
                "passages of a few paragraphs",
                line=int(line) if line is not None else None,
                field=names.get(col, col),
            )
        )
    return out


def token_lengths(df: pd.DataFrame, tokenizer: Any, field: str, limit: int | None = TOKEN_SAMPLE) -> list[int]:
    """Token counts (with special tokens) of a seeded sample of at most `limit` texts of one column."""
    texts = df[field]
    if limit is not None and len(texts) > limit:
        texts = texts.sample(n=limit, random_state=0)
    texts = [str(t)[:MAX_TOKENIZED_CHARS] for t in texts]  # past this every model truncates: no need to count on
    out: list[int] = []
    for start in range(0, len(texts), 512):  # batches keep memory flat on big files
        batch = texts[start : start + 512]
        if callable(tokenizer):
            try:  # verbose=False: we report over-long texts ourselves, without HF's "indexing errors" log line
                ids = tokenizer(batch, add_special_tokens=True, verbose=False)["input_ids"]
            except TypeError:
                ids = tokenizer(batch, add_special_tokens=True)["input_ids"]
            out += [len(i) for i in ids]
        else:
            out += [len(tokenizer.encode(t)) for t in batch]
    return out


def _pct(values: Any, qs: tuple[int, ...]) -> dict[str, int]:
    arr = np.asarray(values, dtype=float)
    return {f"p{q}": int(round(float(np.percentile(arr, q)))) for q in qs} | {"max": int(arr.max())}


def compute_stats(df: pd.DataFrame, format: str, tokenizer: Any = None, max_seq_length: int | None = None) -> dict:
    """JSON-serialisable statistics: distinct values, character/token length percentiles, score histogram."""
    text_cols = [c for c in COLUMNS[format] if c != "similarity"]
    stats: dict[str, Any] = {"rows": int(len(df)), "format": format}
    for col in text_cols:
        stats[f"distinct_{col}"] = int(df[col].nunique()) if len(df) else 0
    if not len(df):
        return stats
    stats["duplicate_rows"] = int(df.duplicated(COLUMNS[format]).sum())
    stats["char_lengths"] = {c: _pct(df[c].str.len(), (50, 95)) for c in text_cols}
    if tokenizer is not None:
        stats["token_lengths"] = {}
        for col in text_cols:
            lengths = token_lengths(df, tokenizer, col)
            entry: dict[str, Any] = _pct(lengths, (50, 90, 95, 99))
            entry["over_max"] = sum(n > max_seq_length for n in lengths) if max_seq_length else None
            entry.update(max_seq_length=max_seq_length, sampled=len(lengths) < len(df), n=len(lengths))
            stats["token_lengths"][col] = entry
    if format == "scored":
        counts, edges = np.histogram(df["similarity"].clip(0, 1), bins=10, range=(0.0, 1.0))
        stats["similarity_histogram"] = {
            "bins": [round(float(e), 2) for e in edges],
            "counts": [int(c) for c in counts],
            "mean": round(float(df["similarity"].mean()), 4),
        }
    return stats


def length_warnings(stats: dict, rows: int, names: dict[str, str]) -> list[Issue]:
    """One warning per text field with texts over max_seq_length (estimated when only a sample was tokenized)."""
    out = []
    for col, entry in stats.get("token_lengths", {}).items():
        over, limit = entry.get("over_max"), entry.get("max_seq_length")
        if not over:
            continue
        name = names.get(col, col)
        if entry["sampled"]:
            est = round(over / entry["n"] * rows)
            count = f"about {est} texts (estimated from {over} of a {entry['n']}-text sample)"
        else:
            count = f"{over} texts"
        out.append(Issue(f"{count} in field '{name}' exceed max_seq_length={limit} tokens and will be truncated"))
    return out

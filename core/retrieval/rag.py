"""RAG training sets: for each question retrieve the top-k chunks of a document index and write one JSONL record
ready for LLM fine-tuning (plain question/contexts/answer, alpaca instruction/input/output, or chat messages).

Questions come from a file (a .txt, one per line; or a table whose query/question column is read, its
answer/document/positive column giving the answer and the gold text, a `source` column naming the gold document
file) or, without one, from the documents themselves (each document's first sentence: an easy self-check). When
gold documents are known, recall@k and MRR@k of the index are reported."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.data.checks import IssueList, kind
from core.data.files import _decode, read_records  # the data reader: line numbers in its messages, all formats
from core.retrieval.doc_index import ChunkHit, DocIndex

FORMATS = ("plain", "alpaca", "messages")
QUERY_COLUMNS = ("query", "question", "anchor", "prompt", "instruction")
ANSWER_COLUMNS = ("answer", "response", "output", "document", "positive")
SOURCE_COLUMNS = ("source", "gold_source", "file")
SYSTEM = "Answer the question using only the context. Say so when the context does not contain the answer."
MAX_DERIVED = 1000


@dataclass
class Question:
    text: str
    answer: str | None = None
    gold_text: str | None = None  # a retrieved chunk is relevant when it overlaps this text...
    gold_source: str | None = None  # ...or comes from this document file


def _norm(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip().lower()


def _pick(columns: list[str], names: tuple[str, ...]) -> str | None:
    lower = {c.lower(): c for c in columns}
    return next((lower[n] for n in names if n in lower), None)


def read_questions(path: str | Path) -> list[Question]:
    """Questions from a .txt (one per line) or a .jsonl/.json/.csv/.tsv/.parquet table (see the module doc)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"questions file not found: {path}")

    errors = IssueList(5)

    def fail() -> ValueError:
        return ValueError(f"cannot read questions {path}: " + "; ".join(str(i) for i in errors.finish()))

    if path.suffix.lower() == ".txt":
        text = _decode(path, errors)
        if text is None:
            raise fail()
        out = [Question(q.strip()) for q in dict.fromkeys(text.split("\n")) if q.strip()]
        if not out:
            raise ValueError(f"no questions in {path} (every line is blank)")
        return out
    src = read_records(path, errors)
    if len(errors):
        raise fail()
    rows = [rec for _, rec in src.records]
    columns = src.header or list(dict.fromkeys(k for rec in rows for k in rec))
    qcol = _pick(columns, QUERY_COLUMNS)
    if qcol is None:
        raise ValueError(
            f"no question column in {path}: name one of {', '.join(QUERY_COLUMNS)} (columns: {', '.join(columns)})"
        )
    acol, scol = _pick(columns, ANSWER_COLUMNS), _pick(columns, SOURCE_COLUMNS)
    for line, rec in src.records:  # a wrong type is the user's mistake to see, not a question silently lost
        for col, ok in ((qcol, (str,)), (acol, (str,)), (scol, (str, int))):
            value = rec.get(col) if col else None
            if value is not None and (isinstance(value, bool) or not isinstance(value, ok)):
                errors.add(f"expected text, got {kind(value)}", line, col)
    if len(errors):
        raise fail()
    out, seen = [], set()
    for rec in rows:
        q = rec.get(qcol)
        if not isinstance(q, str) or not q.strip() or q.strip() in seen:
            continue
        seen.add(q.strip())
        a = rec.get(acol) if acol else None
        a = a.strip() if isinstance(a, str) and a.strip() else None
        s = rec.get(scol) if scol else None
        out.append(Question(q.strip(), a, a, str(s) if s not in (None, "") else None))
    if not out:
        raise ValueError(f"no questions in {path} (column {qcol!r} is empty)")
    return out


def derived_questions(index: DocIndex, limit: int = MAX_DERIVED) -> list[Question]:
    """One question per document: its first sentence (a title line for Markdown), the document as gold."""
    firsts = index.chunks.sort_values("start", kind="stable").drop_duplicates(["source", "record"])
    out = []
    for _, row in firsts.head(limit).iterrows():
        first = re.split(r"(?<=[.!?])\s|\n", row["text"].lstrip("# "), maxsplit=1)[0].strip()
        if first:
            out.append(Question(first, gold_source=row["source"]))
    return out


def _relevant(hit: ChunkHit, q: Question) -> bool:
    if q.gold_source and (hit.source == q.gold_source or Path(hit.source).name == q.gold_source):
        return True
    if q.gold_text:
        a, b = _norm(hit.text), _norm(q.gold_text)
        return bool(a) and (a in b or b in a)
    return False


def retrieval_metrics(results: list[list[ChunkHit]], questions: list[Question], k: int) -> dict[str, Any] | None:
    """recall@k (a relevant chunk in the top k) and MRR@k over the questions with a known gold document."""
    judged = [(hits, q) for hits, q in zip(results, questions) if q.gold_text or q.gold_source]
    if not judged:
        return None
    ranks = [next((h.rank for h in hits[:k] if _relevant(h, q)), None) for hits, q in judged]
    return {
        "questions": len(judged),
        f"recall@{k}": sum(r is not None for r in ranks) / len(judged),
        f"mrr@{k}": sum(1 / r for r in ranks if r) / len(judged),
    }


def _context_block(hits: list[ChunkHit]) -> str:
    return "\n\n".join(f"[{h.rank}] ({h.source}) {h.text}" for h in hits)


def make_record(q: Question, hits: list[ChunkHit], fmt: str) -> dict[str, Any]:
    if fmt == "plain":
        rec: dict[str, Any] = {
            "question": q.text,
            "contexts": [{"text": h.text, "source": h.source, "score": round(h.score, 4)} for h in hits],
        }
        if q.answer is not None:
            rec["answer"] = q.answer
        return rec
    if fmt == "alpaca":
        return {"instruction": q.text, "input": "Context:\n" + _context_block(hits), "output": q.answer or ""}
    if fmt == "messages":
        msgs = [
            {"role": "system", "content": SYSTEM},
            {"role": "user", "content": f"Context:\n{_context_block(hits)}\n\nQuestion: {q.text}"},
        ]
        if q.answer is not None:
            msgs.append({"role": "assistant", "content": q.answer})
        return {"messages": msgs}
    raise ValueError(f"unknown format {fmt!r}: use one of {', '.join(FORMATS)}")


def write_dataset(
    index: DocIndex, questions: list[Question], output: str | Path, k: int = 3, fmt: str = "plain"
) -> tuple[int, dict[str, Any] | None]:
    """Retrieve for every question, write the JSONL atomically; (records written, retrieval metrics or None)."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}: use one of {', '.join(FORMATS)}")
    output = Path(output)
    if output.is_dir():
        raise ValueError(f"output {output} is a folder: give a file name, e.g. {output / 'rag_dataset.jsonl'}")
    results = index.search_many([q.text for q in questions], k)
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = output.with_name(output.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        for q, hits in zip(questions, results):
            f.write(json.dumps(make_record(q, hits, fmt), ensure_ascii=False) + "\n")
    tmp.replace(output)
    return len(questions), retrieval_metrics(results, questions, k)


def evaluate_index(index: DocIndex, questions: list[Question], k: int) -> dict[str, Any] | None:
    return retrieval_metrics(index.search_many([q.text for q in questions], k), questions, k)


def base_model_of(model_dir: str | Path) -> str | None:
    """The base model named in a fine-tuned model's card (its README front matter), if any."""
    card = Path(model_dir) / "README.md"
    if not card.is_file():
        return None
    m = re.search(r"^base_model:\s*['\"]?([^'\"\n]+)", card.read_text(encoding="utf-8", errors="replace"), re.M)
    return m.group(1).strip() if m else None


def metrics_line(label: str, metrics: dict[str, Any] | None) -> str:
    if not metrics:
        return f"{label}: no gold documents known, no retrieval metrics"
    shown = ", ".join(f"{k} {v:.4f}" for k, v in metrics.items() if k != "questions")
    return f"{label}: {shown} ({metrics['questions']} questions)"

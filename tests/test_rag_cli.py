"""The RAG command lines with the real bundled model: `index build/search`, `rag-dataset` in its three formats
with recall/MRR, the guide's `scripts/create_rag_dataset.py` line, and the refusal of another model's index."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from core.__main__ import main
from core.config.schema import DEFAULT_MODEL
from core.models.load import resolve_model
from tests.conftest import ROOT, read_jsonl, write_jsonl
from tests.rag_helpers import make_documents

QUESTIONS = [
    {"question": "How often must the coffee machine be descaled?", "answer": "Every month.", "source": "manual.pdf"},
    {
        "question": "My VPN keeps disconnecting, what can I do?",
        "answer": "Reinstall it and use IKEv2.",
        "source": "vpn.txt",
    },
    {"question": "The printer jams", "answer": "Take out half of the paper.", "source": "printer.md"},
]


@pytest.fixture(scope="module")
def docs(tmp_path_factory) -> Path:
    return make_documents(tmp_path_factory.mktemp("cli") / "docs", bad=False)


@pytest.fixture(scope="module")
def questions(docs) -> Path:
    return write_jsonl(docs.parent / "questions.jsonl", QUESTIONS)


def test_index_build_then_search_prints_the_source(docs, tmp_path, capsys):
    out = tmp_path / "index"
    assert (
        main(
            [
                "index",
                "build",
                "--model",
                DEFAULT_MODEL,
                "--documents",
                str(docs),
                "--out",
                str(out),
                "--chunk-tokens",
                "30",
            ]
        )
        == 0
    )
    assert "search: exact (IndexFlatIP" in capsys.readouterr().out
    assert main(["index", "search", "--index", str(out), "descaling the coffee machine", "-k", "2"]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed[0].split()[2] == "manual.pdf" and printed[0].strip().startswith("1.")


def test_search_with_another_models_index_is_refused(docs, tmp_path, capsys):
    out = tmp_path / "index"
    assert main(["index", "build", "--model", DEFAULT_MODEL, "--documents", str(docs), "--out", str(out)]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    manifest["model"]["fingerprint"] = "0" * 24  # as if built by another model
    (out / "manifest.json").write_text(json.dumps(manifest))
    capsys.readouterr()
    assert main(["index", "search", "--index", str(out), "printer"]) == 1
    err = capsys.readouterr().err
    assert "was built with model" in err and "rebuild the index" in err and "Traceback" not in err


@pytest.mark.parametrize("fmt", ["plain", "alpaca", "messages"])
def test_rag_dataset_formats_and_metrics(fmt, docs, questions, tmp_path, capsys):
    output = tmp_path / f"rag_{fmt}.jsonl"
    args = [
        "rag-dataset",
        "--embedding-model",
        DEFAULT_MODEL,
        "--documents",
        str(docs),
        "--output",
        str(output),
        "--questions",
        str(questions),
        "-k",
        "2",
        "--format",
        fmt,
        "--chunk-tokens",
        "30",
    ]
    assert main(args + (["--compare-base", "--base-model", DEFAULT_MODEL] if fmt == "plain" else [])) == 0
    printed = capsys.readouterr().out
    assert "model sentence-transformers/all-MiniLM-L6-v2: recall@2 1.0000, mrr@2 1.0000 (3 questions)" in printed
    rows = read_jsonl(output)
    assert len(rows) == len(QUESTIONS)
    first = rows[0]
    if fmt == "plain":
        assert first["question"] == QUESTIONS[0]["question"] and first["answer"] == "Every month."
        assert len(first["contexts"]) == 2 and first["contexts"][0]["source"] == "manual.pdf"
        assert set(first["contexts"][0]) == {"text", "source", "score"}
        assert "base model sentence-transformers/all-MiniLM-L6-v2: recall@2" in printed
    elif fmt == "alpaca":
        assert set(first) == {"instruction", "input", "output"} and first["output"] == "Every month."
        assert "(manual.pdf) The coffee machine" in first["input"]
    else:
        roles = [m["role"] for m in first["messages"]]
        assert roles == ["system", "user", "assistant"] and "Question: How often" in first["messages"][1]["content"]


@pytest.mark.slow
def test_guide_command_line_works_as_written(docs, tmp_path):
    (tmp_path / "outputs").mkdir()
    (tmp_path / "outputs" / "embedding_model").symlink_to(resolve_model(DEFAULT_MODEL))
    (tmp_path / "data" / "raw").mkdir(parents=True)
    (tmp_path / "data" / "raw" / "domain_docs").symlink_to(docs)
    cmd = [
        sys.executable,
        str(ROOT / "scripts" / "create_rag_dataset.py"),
        "--embedding_model",
        "outputs/embedding_model",
        "--documents",
        "data/raw/domain_docs",
        "--output",
        "data/processed/rag_enhanced_data.jsonl",
    ]
    proc = subprocess.run(
        cmd, cwd=tmp_path, capture_output=True, text=True, timeout=300, env={**os.environ, "HF_HUB_OFFLINE": "1"}
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = read_jsonl(tmp_path / "data" / "processed" / "rag_enhanced_data.jsonl")
    assert len(rows) == 6 and all(len(r["contexts"]) == 3 for r in rows)  # one derived question per document
    assert "derived from the documents' first sentences" in proc.stdout and "recall@3" in proc.stdout
    assert (tmp_path / "data" / "processed" / "rag_enhanced_data_index" / "manifest.json").exists()


def test_rag_dataset_bad_questions_file_is_one_line(docs, tmp_path, capsys):
    bad = write_jsonl(tmp_path / "q.jsonl", [{"title": "no question column"}])
    assert (
        main(
            [
                "rag-dataset",
                "--embedding-model",
                DEFAULT_MODEL,
                "--documents",
                str(docs),
                "--output",
                str(tmp_path / "o.jsonl"),
                "--questions",
                str(bad),
            ]
        )
        == 1
    )
    assert "no question column" in capsys.readouterr().err


def test_missing_model_or_documents_are_one_line_errors(docs, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert (
        main(
            [
                "rag-dataset",
                "--embedding-model",
                "outputs/embedding_model",
                "--documents",
                str(docs),
                "--output",
                "out.jsonl",
            ]
        )
        == 1
    )
    assert "No model at 'outputs/embedding_model'" in capsys.readouterr().err
    assert main(["index", "build", "--model", DEFAULT_MODEL, "--documents", "nowhere", "--out", "ix"]) == 1
    assert "documents not found: nowhere" in capsys.readouterr().err
    assert main(["index", "search", "--index", "ix", "q"]) == 1
    assert "no index at ix" in capsys.readouterr().err


def test_questions_of_the_wrong_type_or_encoding_name_their_line(tmp_path):
    from core.retrieval.rag import read_questions

    typed = write_jsonl(
        tmp_path / "q.jsonl",
        [{"question": "ok?", "source": 3}, {"question": ["a list"]}, {"question": "q", "answer": {"x": 1}}],
    )
    with pytest.raises(ValueError, match=r"line 2, field 'question': expected text.*line 3, field 'answer'"):
        read_questions(typed)
    (tmp_path / "latin1.txt").write_bytes(b"first\ncaf\xe9?\n")
    with pytest.raises(ValueError, match=r"latin1.txt: line 2: not valid UTF-8"):
        read_questions(tmp_path / "latin1.txt")
    (tmp_path / "blank.txt").write_text("\n  \n", encoding="utf-8")
    with pytest.raises(ValueError, match="blank.txt"):
        read_questions(tmp_path / "blank.txt")
    assert [
        q.gold_source for q in read_questions(write_jsonl(tmp_path / "s.jsonl", [{"question": "a", "source": 3}]))
    ] == ["3"]


def test_rag_dataset_into_a_folder_is_refused_before_any_work(docs, questions, tmp_path, capsys):
    args = ["rag-dataset", "--embedding-model", DEFAULT_MODEL, "--documents", str(docs), "--questions", str(questions)]
    assert main([*args, "--output", str(tmp_path)]) == 1
    assert "is a folder: give a file name" in capsys.readouterr().err
    assert not list(tmp_path.parent.glob(f"{tmp_path.name}.tmp"))

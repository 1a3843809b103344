"""Document indexes with the real bundled model: reading a mixed folder (bad files skipped with reasons), chunking
within the token limit, search, incremental rebuilds, fingerprint refusal and interrupted builds."""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest

from core.config.schema import DEFAULT_MODEL
from core.data import documents
from core.data.documents import chunk_spans
from core.models.load import load_model, load_tokenizer, resolve_model
from core.retrieval.doc_index import IndexMismatchError, build_index, load_index, model_fingerprint
from tests.rag_helpers import make_documents

CHUNK = 30
MAX_MB = 0.02


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("rag")
    docs = make_documents(root / "docs")
    report = build_index(DEFAULT_MODEL, docs, root / "index", chunk_tokens=CHUNK, overlap=8, max_file_mb=MAX_MB)
    return root, report


def test_build_report_lists_every_skipped_file_with_its_reason(built):
    _, report = built
    reasons = {s["source"]: s["reason"] for s in report.skipped}
    assert set(reasons) == {
        "scan.pdf",
        "photo.png",
        "dump.txt",
        "latin1.txt",
        "empty.md",
        "huge.txt",
        "broken.pdf",
        "broken.jsonl",
    }
    assert "unreadable PDF" in reasons["broken.pdf"] and reasons["broken.jsonl"].startswith("line 2: invalid JSON")
    assert "no extractable text" in reasons["scan.pdf"] or "without extractable text" in reasons["scan.pdf"]
    assert "binary" in reasons["dump.txt"] and "UTF-8" in reasons["latin1.txt"]
    assert "empty" in reasons["empty.md"] and "too large" in reasons["huge.txt"]
    assert "unsupported file type '.png'" in reasons["photo.png"]
    assert report.documents == 6 and report.embedded == report.chunks > 0 and report.reused == 0
    assert report.index_type.startswith("exact")


def test_index_folder_layout_and_chunks_within_the_token_limit(built):
    root, report = built
    index = root / "index"
    assert {p.name for p in index.iterdir()} == {"index.faiss", "chunks.parquet", "manifest.json", "report.json"}
    chunks = pd.read_parquet(index / "chunks.parquet")
    assert list(chunks.columns) == ["text", "source", "record", "start", "end", "hash", "doc_hash"]
    tok = load_tokenizer(DEFAULT_MODEL)
    assert max(len(tok(t, add_special_tokens=False)["input_ids"]) for t in chunks["text"]) <= CHUNK
    assert {"vpn.txt", "notes/printer.md", "faq.jsonl", "kitchen.csv", "manual.pdf"} <= set(chunks["source"])
    assert not any(p.name.startswith(".index") for p in root.iterdir()), "no temporary folder is left behind"


def test_chunks_break_at_paragraphs_then_sentences():
    tok = load_tokenizer(DEFAULT_MODEL)
    text = "First paragraph talks about one thing only.\n\nSecond one is about another. It has two sentences here."
    spans = chunk_spans(text, tok, 12, 0)
    assert text[spans[0][0] : spans[0][1]] == "First paragraph talks about one thing only."
    assert all(text[s:e].strip() for s, e in spans) and spans[-1][1] == len(text)


def test_long_texts_are_tokenized_in_paragraph_segments(monkeypatch):
    tok = load_tokenizer(DEFAULT_MODEL)
    text = "\n\n".join(f"Paragraph {i} says something about topic number {i}. It ends here." for i in range(40))
    whole = chunk_spans(text, tok, 20, 4)
    monkeypatch.setattr(documents, "SEGMENT_CHARS", 300)
    pieces = chunk_spans(text, tok, 20, 4)
    assert len(whole) > 10 and len(pieces) > 10 and pieces[-1][1] == len(text) and pieces[0][0] == 0
    covered = {i for s, e in pieces for i in range(s, e)}
    assert all(i in covered for i, c in enumerate(text) if not c.isspace()), "no text is lost at segment cuts"
    assert all(len(tok(text[s:e], add_special_tokens=False)["input_ids"]) <= 20 for s, e in pieces)
    assert all(text[s - 2 : s] == "\n\n" or s == 0 or text[s - 1] == " " for s, e in pieces)


def test_search_finds_the_right_document(built):
    root, _ = built
    index = load_index(root / "index")
    for query, source in [
        ("coffee maker descale", "manual.pdf"),
        ("VPN keeps dropping", "vpn.txt"),
        ("paper jam", "notes/printer.md"),
        ("I forgot my password", "faq.jsonl"),
        ("how hot to bake bread", "kitchen.csv"),
    ]:
        hits = index.search(query, k=3)
        assert hits[0].source == source, (query, [(h.source, h.score) for h in hits])
        assert hits[0].rank == 1 and hits[0].score > hits[-1].score
    assert index.search("printer", k=100)[-1].rank == len(index)
    with pytest.raises(ValueError, match="at least 1"):
        index.search("printer", k=0)


def test_incremental_rebuild_embeds_only_changed_chunks(built, tmp_path, monkeypatch):
    root, _ = built
    docs = shutil.copytree(root / "docs", tmp_path / "docs")
    out = tmp_path / "index"
    first = build_index(DEFAULT_MODEL, docs, out, chunk_tokens=CHUNK, overlap=8, max_file_mb=MAX_MB)
    again = build_index(DEFAULT_MODEL, docs, out, chunk_tokens=CHUNK, overlap=8, max_file_mb=MAX_MB)
    assert (again.embedded, again.reused, again.removed) == (0, first.chunks, 0)
    before = pd.read_parquet(out / "chunks.parquet")
    chunked = []
    spans = documents.chunk_spans
    monkeypatch.setattr(documents, "chunk_spans", lambda text, *a: chunked.append(text) or spans(text, *a))
    (docs / "kitchen.csv").unlink()
    (docs / "notes" / "printer.md").write_text("# Printer\n\nThe new printer prints in colour.", encoding="utf-8")
    third = build_index(DEFAULT_MODEL, docs, out, chunk_tokens=CHUNK, overlap=8, max_file_mb=MAX_MB)
    after = pd.read_parquet(out / "chunks.parquet")
    new = after[~after["hash"].isin(before["hash"])]
    assert third.embedded == len(new) > 0 and set(new["source"]) == {"notes/printer.md"}
    assert third.reused == len(after) - len(new)
    assert third.removed == len(set(before["hash"]) - set(after["hash"])) >= 2  # kitchen.csv + the old printer text
    assert "kitchen.csv" not in set(after["source"])
    assert len(chunked) == 1 and "colour" in chunked[0], "unchanged documents keep their chunks, untokenized"
    assert load_index(out).search("colour printing", k=1)[0].source == "notes/printer.md"


def test_an_interrupted_build_leaves_the_previous_index(built, tmp_path):
    root, _ = built
    out = shutil.copytree(root / "index", tmp_path / "index")
    docs = shutil.copytree(root / "docs", tmp_path / "docs")
    (docs / "vpn.txt").write_text("Completely new text about the VPN and its certificates.", encoding="utf-8")
    before = {p.name: p.read_bytes() for p in out.iterdir()}

    def interrupt(done, total):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        build_index(DEFAULT_MODEL, docs, out, chunk_tokens=CHUNK, overlap=8, max_file_mb=MAX_MB, progress=interrupt)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
    assert load_index(out).search("VPN keeps dropping", k=1)[0].source == "vpn.txt"


def test_an_index_of_another_model_is_refused(built, tmp_path):
    root, _ = built
    same = shutil.copytree(resolve_model(DEFAULT_MODEL), tmp_path / "copy")
    assert model_fingerprint(same) == model_fingerprint(DEFAULT_MODEL), "a copy is the same model"
    assert len(load_index(root / "index", model=same).search("printer", 1)) == 1
    other = load_model(DEFAULT_MODEL)
    with np.errstate(all="ignore"):
        next(other.parameters()).data.mul_(1.01)
    other.save(str(tmp_path / "other"))
    with pytest.raises(IndexMismatchError, match="built with model .* fingerprint"):
        load_index(root / "index", model=tmp_path / "other")


def test_empty_folder_is_a_clear_error(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "blank.txt").write_text("  \n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"(?s)no usable documents .*blank.txt: empty file"):
        build_index(DEFAULT_MODEL, tmp_path / "docs", tmp_path / "index")
    assert not (tmp_path / "index").exists()


def test_large_index_switches_to_hnsw_and_reports_recall(built, tmp_path):
    root, _ = built
    report = build_index(
        DEFAULT_MODEL,
        root / "docs",
        tmp_path / "index",
        chunk_tokens=CHUNK,
        overlap=8,
        max_file_mb=MAX_MB,
        exact_limit=3,
    )
    assert report.index_type.startswith("approximate (HNSW") and report.recall_at_10 >= 0.9
    assert "recall@10 vs exact" in report.to_text()
    assert load_index(tmp_path / "index").search("coffee maker descale", k=1)[0].source == "manual.pdf"
    again = build_index(
        DEFAULT_MODEL,
        root / "docs",
        tmp_path / "index",
        chunk_tokens=CHUNK,
        overlap=8,
        max_file_mb=MAX_MB,
        exact_limit=3,
    )
    assert (again.embedded, again.reused) == (0, report.chunks), "vectors come back out of an HNSW index too"


def test_fast_queries_rank_as_torch_does(built):
    root, _ = built
    plain, fast = load_index(root / "index"), load_index(root / "index", fast_queries=True)
    for query in ("VPN keeps dropping", "coffee maker descale"):
        a, b = plain.search(query, k=4), fast.search(query, k=4)
        assert [h.id for h in a] == [h.id for h in b]
        assert np.allclose([h.score for h in a], [h.score for h in b], atol=1e-4)


def test_out_that_is_not_an_index_is_refused_and_kept(built, tmp_path):
    """A wrong --out (a folder of other files, the documents folder itself, a file) is refused before anything is
    read or written, not replaced by the index."""
    from core.retrieval.doc_index import DocIndexError

    root, _ = built
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "thesis.txt").write_text("my thesis", encoding="utf-8")
    docs = shutil.copytree(root / "docs", tmp_path / "docs")
    a_file = tmp_path / "notes.txt"
    a_file.write_text("notes", encoding="utf-8")
    for out, says in ((precious, "no index"), (docs, "no index"), (a_file, "is a file")):
        before = sorted(p.name for p in out.iterdir()) if out.is_dir() else out.read_text(encoding="utf-8")
        with pytest.raises(DocIndexError, match=says):
            build_index(DEFAULT_MODEL, docs, out, chunk_tokens=CHUNK, max_file_mb=MAX_MB)
        assert (sorted(p.name for p in out.iterdir()) if out.is_dir() else out.read_text(encoding="utf-8")) == before
    assert (precious / "thesis.txt").read_text(encoding="utf-8") == "my thesis"
    # an earlier index is still replaced
    again = build_index(DEFAULT_MODEL, docs, root / "index", chunk_tokens=CHUNK, overlap=8, max_file_mb=MAX_MB)
    assert again.reused == again.chunks


def test_a_build_over_the_chunk_bound_is_refused_before_embedding(built, tmp_path, monkeypatch):
    from core.retrieval import doc_index

    root, report = built
    monkeypatch.setattr(doc_index, "_vectors", lambda *a, **k: pytest.fail("embedded despite the bound"))
    with pytest.raises(doc_index.DocIndexError, match="over this server's limit of 2"):
        build_index(
            DEFAULT_MODEL, root / "docs", tmp_path / "index", chunk_tokens=CHUNK, max_file_mb=MAX_MB, max_chunks=2
        )
    assert not (tmp_path / "index").exists()

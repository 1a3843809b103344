"""The "Search your documents" tab's handlers as plain functions with the real bundled model: uploads (a zip
extracted safely) into a server-made collection, two indexes, side-by-side search, index zip and RAG dataset."""

from __future__ import annotations

import json
import stat
import zipfile
from pathlib import Path

import pytest

from core.config.schema import DEFAULT_MODEL
from core.data.documents import safe_extract_zip
from core.retrieval.doc_index import load_index
from studio.tabs import rag as tab
from tests.conftest import write_jsonl
from tests.rag_helpers import make_documents


def _zip(path: Path, members: dict[str, bytes], link: str | None = None) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
        if link:
            info = zipfile.ZipInfo(link)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            zf.writestr(info, "/etc/passwd")
    return path


def test_unsafe_zips_are_refused_and_nothing_is_written(tmp_path):
    dest = tmp_path / "out"
    for bad, why in [
        ({"../evil.txt": b"x"}, "outside"),
        ({"/abs.txt": b"x"}, "outside"),
        ({"ok.txt": b"fine"}, "symbolic link"),
        ({f"f{i}.txt": b"x" for i in range(6)}, "at most 5"),
        ({"big.txt": b"x" * 3000}, "more than 0.002 MB"),
    ]:
        archive = _zip(tmp_path / "a.zip", bad, link="link.txt" if why == "symbolic link" else None)
        with pytest.raises(ValueError, match=why):
            safe_extract_zip(archive, dest, max_members=5, max_mb=0.002)
        assert not dest.exists() or not any(p.is_file() for p in dest.rglob("*"))
    with pytest.raises(ValueError, match="not a readable zip"):
        safe_extract_zip(tmp_path / "out" / "missing.zip", dest)


def test_upload_build_search_download(tmp_path):
    ws = tmp_path / "ws"
    docs = make_documents(tmp_path / "src", bad=False)
    archive = tmp_path / "docs.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for f in docs.rglob("*"):
            if f.is_file() and f.name != "vpn.txt":
                zf.write(f, f.relative_to(docs).as_posix())
    cid, line = tab.add_documents([str(archive)], ws, None)
    assert tab.CID.match(cid) and "4 usable files" in line
    cid2, line = tab.add_documents([str(docs / "vpn.txt")], ws, cid)
    assert cid2 == cid and "5 usable files" in line
    with pytest.raises(ValueError, match="upload files"):
        tab.collection_dir(ws, "../../etc")

    status = tab.build_both(cid, DEFAULT_MODEL, str(tmp_path / "no_such_model"), ws)
    assert "**Model A**" in status and "search: exact" in status and "⚠️" in status  # B fails, A is built
    a, b, line = tab.search_both(cid, "descaling the coffee machine", 3, ws)
    assert a.iloc[0]["source"] == "docs/manual.pdf" and b.empty and "no index yet" in line

    path = tab.download_index(cid, "A", ws)
    with zipfile.ZipFile(path) as zf:
        assert set(zf.namelist()) == {"index.faiss", "chunks.parquet", "manifest.json", "report.json"}
        zf.extractall(tmp_path / "unzipped")
    assert load_index(tmp_path / "unzipped").search("paper jam", 1)[0].source == "docs/notes/printer.md"

    questions = write_jsonl(
        tmp_path / "q.jsonl", [{"question": "coffee machine descaling", "answer": "monthly", "source": "manual.pdf"}]
    )
    out, line = tab.rag_dataset(cid, "A", str(questions), 2, "messages", ws)
    record = json.loads(Path(out).read_text().splitlines()[0])
    assert record["messages"][-1] == {"role": "assistant", "content": "monthly"} and "recall@2 1.0000" in line
    assert Path(out).is_relative_to(ws / "rag" / cid)


def test_the_studio_has_the_tab(tmp_path):
    from studio.app import create_app

    demo = create_app(workspace=tmp_path / "ws", runs_dir=tmp_path / "runs")
    import gradio as gr

    labels = [b.label for b in demo.blocks.values() if isinstance(b, gr.Tab)]
    assert any("Search your documents" in str(label) for label in labels), labels


@pytest.mark.slow
def test_export_tab_zips_a_model_with_its_index_and_exports_onnx(tmp_path):
    from core.models.load import resolve_model
    from core.retrieval.doc_index import build_index
    from studio.tabs import export as export_tab

    model = resolve_model(DEFAULT_MODEL)
    build_index(model, make_documents(tmp_path / "docs", bad=False), tmp_path / "index", chunk_tokens=30)
    path, line = export_tab.build_zip(model, tmp_path / "ws", str(tmp_path / "index"))
    assert "with its document index" in line
    with zipfile.ZipFile(path) as zf:
        names = zf.namelist()
        top = names[0].split("/")[0]  # one top-level folder named after the model
        assert f"{top}/index/chunks.parquet" in names and f"{top}/modules.json" in names
    zipped, text = export_tab.build_onnx(model, tmp_path / "ws", int8=False)
    assert "fp32" in text and "ok" in text and not text.startswith("⚠️")
    assert zipped.endswith("_onnx.zip") and any(n.endswith("/model.onnx") for n in zipfile.ZipFile(zipped).namelist())
    assert (tmp_path / "ws" / "exports").is_dir()


def test_rag_endpoints_through_the_launched_studio(client, tmp_path):
    from gradio_client import handle_file

    docs = make_documents(tmp_path / "docs", bad=False)
    assert "upload files or a zip first" in client.predict("coffee", 3, api_name="/rag_search")[2]
    line = client.predict(
        [handle_file(str(docs / "manual.pdf")), handle_file(str(docs / "vpn.txt"))], api_name="/rag_add_documents"
    )
    assert "2 usable files" in line
    status = client.predict(DEFAULT_MODEL, DEFAULT_MODEL, api_name="/rag_build")
    assert status.count("search: exact") == 2
    a, b, line = client.predict("descaling the coffee machine", 2, api_name="/rag_search")
    assert a["data"][0][2] == "manual.pdf" and b["data"][0][2] == "manual.pdf"
    path, _ = client.predict("A", api_name="/rag_index_zip")
    assert zipfile.is_zipfile(path)

"""Search your documents: upload files or a zip, index them with two models, ask a question and see both top-k chunk
lists side by side with their sources; download an index (zip) and a RAG training set.

Each browser session gets a collection folder <visitor folder>/rag/<id>/ (locally the workspace) whose id the server makes (never a client
string): docs/ (the uploads), index_a/ and index_b/ (core.retrieval.doc_index folders), exports/. The logic is core's
(core.data.documents, core.retrieval.doc_index, core.retrieval.rag); these functions only map the UI onto it."""

from __future__ import annotations

import re
import secrets
import shutil
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import gradio as gr
import pandas as pd

from core.data.documents import DOC_SUFFIXES, read_documents, safe_extract_zip
from core.public.visitors import disk_usage
from core.retrieval.doc_index import build_index, load_index, zip_index
from core.retrieval.rag import FORMATS, derived_questions, metrics_line, read_questions, write_dataset
from studio import errors
from studio.files import hide_paths, upload_limit_mb, upload_problem
from studio.model_picker import model_pair

MAX_COLLECTION_MB = 500.0  # all uploads of one collection together
SIDES = {"A": "index_a", "B": "index_b"}
CID = re.compile(r"^[0-9a-f]{16}$")


def _safe_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", Path(name).name).strip("._") or "file"


def collection_dir(workspace: str | Path, cid: str | None) -> Path:
    if not cid or not CID.match(str(cid)):
        raise ValueError("No documents yet: upload files or a zip first.")
    return Path(workspace) / "rag" / cid


def add_documents(
    paths: list[str] | None, workspace: str | Path, cid: str | None, max_mb: float = MAX_COLLECTION_MB
) -> tuple[str, str]:
    """Copy uploads (zips extracted safely) into the collection, at most `max_mb` in all; (collection id, a summary
    line)."""
    if not paths:
        raise ValueError("Pick one or more files (or a zip) to upload.")
    cid = cid if cid and CID.match(str(cid)) else secrets.token_hex(8)
    docs = collection_dir(workspace, cid) / "docs"
    docs.mkdir(parents=True, exist_ok=True)
    used = sum(f.stat().st_size for f in docs.rglob("*") if f.is_file()) / 1e6
    for p in paths:
        p = Path(p)
        if p.suffix.lower() == ".zip":
            safe_extract_zip(p, docs / _safe_name(p.stem), max_mb=max_mb - used)
        else:
            if used + p.stat().st_size / 1e6 > max_mb:
                raise ValueError(f"{p.name}: the documents would pass {max_mb:g} MB")
            shutil.copy(p, docs / _safe_name(p.name))
        used = sum(f.stat().st_size for f in docs.rglob("*") if f.is_file()) / 1e6
    found, skipped = read_documents(docs)
    files = len({d.source for d in found})
    line = f"{files} usable files ({len(found)} documents, {used:.1f} MB) in this session's collection."
    if skipped:
        line += " Skipped: " + "; ".join(f"{s.source} ({s.reason})" for s in skipped[:10])
    return cid, line


def build_both(
    cid: str | None, model_a: str, model_b: str, workspace: str | Path, progress=None, max_chunks: int | None = None
) -> str:
    """Build (or update) the index of each model; one failing model does not stop the other."""
    root = collection_dir(workspace, cid)
    lines = []
    for side, model in (("A", model_a), ("B", model_b)):
        if not model:
            continue
        try:
            cb = (lambda d, t, s=side: progress(d / max(1, t), desc=f"Embedding with model {s}")) if progress else None
            report = build_index(model, root / "docs", root / SIDES[side], progress=cb, max_chunks=max_chunks)
            lines.append(f"**Model {side}** (`{model}`): " + report.to_text().replace("\n", "  \n"))
        except Exception as exc:
            lines.append(f"**Model {side}** (`{model}`): ⚠️ {errors.message(exc, 'rag tab build')}")
    return "\n\n".join(lines)


def _frame(hits) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "rank": h.rank,
                "score": round(h.score, 4),
                "source": h.source + (f"#{h.record}" if h.record is not None else ""),
                "text": h.text,
            }
            for h in hits
        ],
        columns=["rank", "score", "source", "text"],
    )


def search_both(cid: str | None, query: str, k: float, workspace: str | Path) -> tuple[pd.DataFrame, pd.DataFrame, str]:
    root = collection_dir(workspace, cid)
    if not (query or "").strip():
        raise ValueError("Type a question first.")
    out, notes = [], []
    for side in SIDES:
        path = root / SIDES[side]
        if not (path / "manifest.json").exists():
            out.append(_frame([]))
            notes.append(f"model {side}: no index yet (build it)")
            continue
        index = load_index(path, fast_queries=True)
        out.append(_frame(index.search(query.strip(), int(k or 5))))
        notes.append(f"model {side}: {len(index)} chunks")
    return out[0], out[1], "Searched " + "; ".join(notes) + "."


def download_index(cid: str | None, side: str, workspace: str | Path) -> str:
    root = collection_dir(workspace, cid)
    return str(zip_index(root / SIDES[side], root / "exports" / f"{SIDES[side]}.zip"))


def rag_dataset(
    cid: str | None, side: str, questions: str | None, k: float, fmt: str, workspace: str | Path
) -> tuple[str, str]:
    """(JSONL path, a line with the counts and recall/MRR when the questions name gold documents)."""
    root = collection_dir(workspace, cid)
    index = load_index(root / SIDES[side])
    qs = read_questions(questions) if questions else derived_questions(index)
    target = root / "exports" / f"rag_dataset_{side.lower()}_{fmt}.jsonl"
    n, metrics = write_dataset(index, qs, target, int(k or 3), fmt)
    where = "your questions" if questions else "questions derived from each document's first sentence"
    return str(target), f"{n} records ({where}), format {fmt}. " + metrics_line(f"model {side}", metrics)


def create_rag_tab(ctx: Any) -> dict[str, Any]:
    ui = _layout(ctx)
    _wire_search(ctx, ui)
    _wire_downloads(ctx, ui)
    return {
        "rag_model_a": ui.model_a,
        "rag_model_b": ui.model_b,
        "rag_query": ui.query,
        "rag_collection": ui.collection,
    }


def _layout(ctx: Any) -> SimpleNamespace:
    """Documents, both models, Build, the question and both hit lists, and the downloads."""
    ui = SimpleNamespace(collection=gr.State(None))  # the server-made collection id of this session
    gr.Markdown(
        "Upload documents (.txt, .md, .pdf, .jsonl/.csv/.parquet with a text column, or a zip of them), "
        "index them with two models, then ask a question to see what each retrieves."
    )
    with gr.Row():
        ui.upload = gr.File(
            label=f"Documents or a zip (max {upload_limit_mb(ctx):g} MB each)",
            file_count="multiple",
            file_types=[*DOC_SUFFIXES, ".zip"],
            scale=2,
        )
        ui.docs_line = gr.Markdown("No documents yet.")
    ui.model_a, ui.model_b = model_pair(ctx)
    ui.build_btn = gr.Button("Build indexes", variant="primary")
    ui.build_line = gr.Markdown()
    with gr.Row():
        ui.query = gr.Textbox(label="Question", scale=4)
        ui.k = gr.Slider(1, 20, value=5, step=1, label="k", scale=1)
    ui.search_btn = gr.Button("Search both")
    ui.search_line = gr.Markdown()
    with gr.Row():
        widths = ["10%", "12%", "20%", "58%"]
        ui.hits_a = gr.Dataframe(label="Model A", interactive=False, wrap=True, column_widths=widths)
        ui.hits_b = gr.Dataframe(label="Model B", interactive=False, wrap=True, column_widths=widths)
    with gr.Accordion("Download an index or a RAG training set", open=False):
        with gr.Row():
            ui.side = gr.Radio(list(SIDES), value="B", label="Index of model")
            ui.fmt = gr.Radio(list(FORMATS), value="plain", label="RAG dataset format")
            ui.rag_k = gr.Slider(1, 10, value=3, step=1, label="contexts per question")
        ui.questions = gr.File(
            label="Questions (optional: .txt one per line, or a pairs/questions table)",
            file_types=[".txt", ".jsonl", ".json", ".csv", ".tsv", ".parquet"],
        )
        with gr.Row():
            ui.zip_btn = gr.Button("Index zip")
            ui.rag_btn = gr.Button("RAG dataset")
        ui.files = gr.File(label="Download", interactive=False)
        ui.dl_line = gr.Markdown()
    return ui


def _fail(exc: Exception, public: bool = False) -> str:
    return errors.warn(exc, "rag tab", public)


def _wire_search(ctx: Any, ui: SimpleNamespace) -> None:
    """`rag_add_documents`, `rag_build` and `rag_search`. Endpoints for scripts too; the collection id stays in the
    session's server-side state."""

    def on_upload(files, cid, request: gr.Request):
        try:
            v = ctx.visitor(request)
            for p in files or []:  # the upload limit of public mode holds here as in the Data tab
                problem = upload_problem(ctx, v, str(p))
                if problem:
                    raise ValueError(problem)
            v.check_disk()
            # public: what a zip may unpack to is bounded by the visitor's own disk cap too
            room = v.limits.visitor_disk_mb - disk_usage(v.root) / 1e6 if v.public else MAX_COLLECTION_MB
            with ctx.heavy(request):
                return add_documents([str(p) for p in (files or [])], v.root, cid, min(MAX_COLLECTION_MB, room))
        except Exception as exc:
            return cid, _fail(exc, ctx.public)

    def on_build(cid, model_a, model_b, request: gr.Request, progress: gr.Progress = gr.Progress()):  # noqa: B008
        try:
            v = ctx.visitor(request)
            a, b = v.model(model_a, "model A"), v.model(model_b, "model B")
            v.check_disk()
            with ctx.heavy(request):
                lines = build_both(cid, a, b, v.root, progress, v.limits.corpus_docs if v.public else None)
                return hide_paths(lines, ctx.public)
        except Exception as exc:
            return _fail(exc, ctx.public)

    def on_search(cid, query, k, request: gr.Request):
        try:
            with ctx.heavy(request):
                return search_both(cid, query, k, ctx.visitor(request).root)
        except Exception as exc:
            return {ui.search_line: _fail(exc, ctx.public)}

    def on_collection(cid, line, request: gr.Request):
        """A collection back from the visitor's saved state: say what it holds (its indexes are still there)."""
        if not cid or not (line or "").startswith("No documents"):
            return gr.skip()
        try:
            docs = collection_dir(ctx.visitor(request).root, cid) / "docs"
            files = len({d.source for d in read_documents(docs)[0]})
        except (OSError, ValueError):
            return gr.skip()
        return f"{files} usable files in your collection, as you left it."

    collection = ui.collection
    collection.change(on_collection, [collection, ui.docs_line], ui.docs_line, api_visibility="private")
    ui.upload.upload(on_upload, [ui.upload, collection], [collection, ui.docs_line], api_name="rag_add_documents")
    ui.build_btn.click(on_build, [collection, ui.model_a, ui.model_b], ui.build_line, api_name="rag_build")
    gr.on(
        [ui.search_btn.click, ui.query.submit],
        on_search,
        [collection, ui.query, ui.k],
        [ui.hits_a, ui.hits_b, ui.search_line],
        api_name="rag_search",
    )


def _wire_downloads(ctx: Any, ui: SimpleNamespace) -> None:
    """`rag_index_zip` and `rag_dataset`."""

    def on_zip(cid, model, request: gr.Request):
        try:
            path = download_index(cid, model, ctx.visitor(request).root)
            return path, f"Index of model {model}: unzip it and `load_index(folder).search(question, k)`."
        except Exception as exc:
            return None, _fail(exc, ctx.public)

    def on_rag(cid, model, questions, k, output_format, request: gr.Request):
        try:
            with ctx.heavy(request):
                return rag_dataset(cid, model, questions, k, output_format, ctx.visitor(request).root)
        except Exception as exc:
            return None, _fail(exc, ctx.public)

    collection, out = ui.collection, [ui.files, ui.dl_line]
    ui.zip_btn.click(on_zip, [collection, ui.side], out, api_name="rag_index_zip")
    ui.rag_btn.click(on_rag, [collection, ui.side, ui.questions, ui.rag_k, ui.fmt], out, api_name="rag_dataset")

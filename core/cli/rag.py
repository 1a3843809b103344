"""CLI commands for document indexes and RAG: `index build`, `index search`, `rag-dataset`, `export-onnx`.

`add_rag_commands(subparsers)` registers them on `python -m core`; errors are ValueError/FileNotFoundError
subclasses, which `core.__main__.main` prints as one line (exit 1)."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from core.config.schema import DEFAULT_MODEL
from core.data.documents import MAX_FILE_MB
from core.models.load import resolve_model
from core.models.onnx_export import export_onnx
from core.retrieval.doc_index import EXACT_LIMIT, build_index, load_index
from core.retrieval.rag import (
    base_model_of,
    derived_questions,
    evaluate_index,
    metrics_line,
    read_questions,
    write_dataset,
)


def _progress(label: str):
    """A progress callback printing an in-place bar on a terminal, a line every ~10% otherwise."""
    tty, state = sys.stderr.isatty(), {"last": -1, "t0": time.perf_counter()}

    def show(done: int, total: int) -> None:
        pct = int(100 * done / max(1, total))
        if not tty and pct // 10 == state["last"] // 10 and done < total:
            return
        state["last"] = pct
        rate = done / max(1e-9, time.perf_counter() - state["t0"])
        bar = "#" * (pct * 30 // 100) + "-" * (30 - pct * 30 // 100)
        line = f"{label} [{bar}] {done}/{total} chunks ({rate:.0f}/s)"
        print(
            ("\r" + line) if tty else line, end="\n" if (done >= total or not tty) else "", file=sys.stderr, flush=True
        )

    return show


def _build(model: str, documents: str, out: str | Path, a, label: str = "embedding"):

    report = build_index(
        model,
        documents,
        out,
        chunk_tokens=a.chunk_tokens,
        overlap=a.overlap,
        exact_limit=a.exact_limit or EXACT_LIMIT,
        max_file_mb=a.max_file_mb or MAX_FILE_MB,
        batch_size=a.batch_size,
        progress=_progress(label),
    )
    print(report.to_text())
    return report


def cmd_index_build(a) -> int:
    _build(a.model, a.documents, a.out, a)
    print(f'search it: python -m core index search --index {a.out} "your question" -k 5')
    return 0


def cmd_index_search(a) -> int:

    index = load_index(a.index, model=a.model)
    for hit in index.search(a.query, a.k):
        text = " ".join(hit.text.split())
        where = hit.source + (f"#{hit.record}" if hit.record is not None else "") + f" [{hit.start}:{hit.end}]"
        print(f"{hit.rank:>3}. {hit.score:.4f}  {where}\n     {text if len(text) <= 300 else text[:297] + '...'}")
    return 0


def cmd_rag_dataset(a) -> int:

    output = Path(a.output)
    index_dir = Path(a.index) if a.index else output.with_name(output.stem + "_index")
    _build(a.embedding_model, a.documents, index_dir, a)
    index = load_index(index_dir)
    if a.questions:
        questions, where = read_questions(a.questions), f"from {a.questions}"
    else:
        questions = derived_questions(index)
        where = "derived from the documents' first sentences (an easy self-check; pass --questions for real ones)"
    n, metrics = write_dataset(index, questions, output, a.k, a.format)
    print(f"{n} questions {where}; top-{a.k} contexts each, format {a.format}: {output}")
    print(metrics_line(f"model {a.embedding_model}", metrics))
    if a.compare_base:
        base = a.base_model or base_model_of(resolve_model(a.embedding_model))
        if not base:  # said, not silently assumed: the comparison is only as meaningful as its base
            base = DEFAULT_MODEL
            print(f"note: {a.embedding_model}'s model card names no base model; comparing with {base} (--base-model)")
        base_dir = index_dir.with_name(index_dir.name + "_base")
        _build(base, a.documents, base_dir, a, label="embedding (base)")
        print(metrics_line(f"base model {base}", evaluate_index(load_index(base_dir), questions, a.k)))
    return 0


def cmd_export_onnx(a) -> int:

    result = export_onnx(a.model, a.out, quantize=a.quantize)
    print(result.to_text())
    return 0 if result.ok else 1

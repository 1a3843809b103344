"""CLI commands for document indexes and RAG: `index build`, `index search`, `rag-dataset`, `export-onnx`.

`add_rag_commands(subparsers)` registers them on `python -m core`; errors are ValueError/FileNotFoundError
subclasses, which `core.__main__.main` prints as one line (exit 1)."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from .errors import positive_int


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
    from .doc_index import EXACT_LIMIT, build_index
    from .documents import MAX_FILE_MB

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


def _cmd_index_build(a) -> int:
    _build(a.model, a.documents, a.out, a)
    print(f'search it: python -m core index search --index {a.out} "your question" -k 5')
    return 0


def _cmd_index_search(a) -> int:
    from .doc_index import load_index

    index = load_index(a.index, model=a.model)
    for hit in index.search(a.query, a.k):
        text = " ".join(hit.text.split())
        where = hit.source + (f"#{hit.record}" if hit.record is not None else "") + f" [{hit.start}:{hit.end}]"
        print(f"{hit.rank:>3}. {hit.score:.4f}  {where}\n     {text if len(text) <= 300 else text[:297] + '...'}")
    return 0


def _cmd_rag_dataset(a) -> int:
    from .config import DEFAULT_MODEL
    from .doc_index import load_index
    from .models import resolve_model
    from .rag import base_model_of, derived_questions, evaluate_index, metrics_line, read_questions, write_dataset

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
        base = a.base_model or base_model_of(resolve_model(a.embedding_model)) or DEFAULT_MODEL
        base_dir = index_dir.with_name(index_dir.name + "_base")
        _build(base, a.documents, base_dir, a, label="embedding (base)")
        print(metrics_line(f"base model {base}", evaluate_index(load_index(base_dir), questions, a.k)))
    return 0


def _cmd_export_onnx(a) -> int:
    from .onnx_export import export_onnx

    result = export_onnx(a.model, a.out, quantize=a.quantize)
    print(result.to_text())
    return 0 if result.ok else 1


def _index_options(p) -> None:
    p.add_argument(
        "--chunk-tokens",
        type=int,
        default=None,
        help="tokens per chunk (default and upper bound: the model's max_seq_length less special tokens)",
    )
    p.add_argument("--overlap", type=int, default=32, help="tokens shared by consecutive chunks")
    p.add_argument("--exact-limit", type=int, help="above this many chunks, an HNSW index (default 50,000)")
    p.add_argument("--max-file-mb", type=float, help="larger files are skipped (default 50)")
    p.add_argument("--batch-size", type=int, default=64)


def add_rag_commands(sub) -> None:
    ix = sub.add_parser("index", help="build or search a persistent document index")
    isub = ix.add_subparsers(dest="index_command", required=True)
    b = isub.add_parser("build", help="index a folder (or file) of documents; re-running updates it")
    b.add_argument("--model", default="outputs/embedding_model")
    b.add_argument("--documents", required=True, help="a folder (read recursively) or one file")
    b.add_argument("--out", required=True, help="index folder")
    _index_options(b)
    b.set_defaults(fn=_cmd_index_build)
    s = isub.add_parser("search", help="top-k chunks for a query")
    s.add_argument("query")
    s.add_argument("--index", required=True)
    s.add_argument("--model", help="encode queries with this model or ONNX copy (default: the index's model)")
    s.add_argument("-k", type=positive_int, default=5)
    s.set_defaults(fn=_cmd_index_search)

    r = sub.add_parser("rag-dataset", help="retrieve contexts per question and write an LLM training JSONL")
    r.add_argument("--embedding-model", default="outputs/embedding_model")
    r.add_argument("--documents", required=True)
    r.add_argument("--output", required=True, help="JSONL file to write")
    r.add_argument("--questions", help="a .txt (one per line) or a pairs/triplets/questions table")
    r.add_argument("-k", "--k", type=positive_int, default=3, dest="k")
    r.add_argument("--format", choices=["plain", "alpaca", "messages"], default="plain")
    r.add_argument("--index", help="index folder (default: <output>_index next to the output)")
    r.add_argument("--compare-base", action="store_true", help="also report recall/MRR of the base model")
    r.add_argument("--base-model", help="the base model for --compare-base (default: from the model card)")
    _index_options(r)
    r.set_defaults(fn=_cmd_rag_dataset)

    e = sub.add_parser("export-onnx", help="an onnxruntime copy of a model (optionally int8), checked against torch")
    e.add_argument("--model", default="outputs/embedding_model")
    e.add_argument("--out", required=True)
    e.add_argument("--quantize", choices=["int8"], help="also write an int8 dynamically quantised model")
    e.set_defaults(fn=_cmd_export_onnx)

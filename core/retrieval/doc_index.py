"""Persistent document indexes: `build_index(model, documents, out)` writes a folder with
  index.faiss     normalised chunk embeddings (inner product = cosine): exact IndexFlatIP up to `exact_limit`
                  chunks, HNSW above it (its recall@10 against exact is measured at build time)
  chunks.parquet  one row per vector: text, source, record, start, end, hash, doc_hash (of the whole document)
  manifest.json   model path and fingerprint, dimension, normalisation, chunking, index type, versions
  report.json     the last build's report (files skipped and why, chunks embedded and reused)
and `load_index(out).search(query, k)` searches it. A rebuild embeds only chunks whose text is new (vectors are
reused by content hash) and drops removed ones; it is written to a temporary folder and swapped in at the end, so an
interrupted build leaves the previous index as it was."""

from __future__ import annotations

import json
import platform
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from core.data.documents import MAX_FILE_MB, Chunk, chunk_documents, read_documents
from core.models.fingerprint import model_fingerprint
from core.models.load import is_model_dir, resolve_model
from core.retrieval.compare import (
    check_model,  # a missing outputs/... folder is named as such, not looked up on the hub
)
from core.retrieval.doc_search import ChunkHit, DocIndex, TorchEncoder, get_encoder  # noqa: F401 (importable from here)

INDEX_VERSION = 1
EXACT_LIMIT = 50_000  # flat search of 100k MiniLM vectors took ~7 ms on 2 cores, HNSW 0.05 ms: above 50k, HNSW
DEFAULT_OVERLAP = 32
HNSW_M, HNSW_EF_CONSTRUCTION, HNSW_EF_SEARCH = 32, 80, 128
RECALL_QUERIES = 200
ENCODE_BLOCK = 256  # chunks per progress step
Progress = Callable[[int, int], None]


class DocIndexError(ValueError):
    """An index that cannot be built, loaded or searched as asked; the message says why and what to do."""


class IndexMismatchError(DocIndexError):
    """The index was built with another model than the one asked to encode its queries."""


def _embed(encoder, texts: list[str], batch_size: int, progress: Progress | None) -> np.ndarray:
    """Embeddings in input order, encoded longest-first in blocks (little padding per batch, a progress step each)."""
    order = np.argsort([-len(t) for t in texts], kind="stable")
    out: np.ndarray | None = None
    for start in range(0, len(texts), ENCODE_BLOCK):
        ids = order[start : start + ENCODE_BLOCK]
        emb = encoder.encode_documents([texts[i] for i in ids], batch_size)
        if out is None:
            out = np.empty((len(texts), emb.shape[1]), dtype=np.float32)
        out[ids] = emb
        if progress:
            progress(min(start + ENCODE_BLOCK, len(texts)), len(texts))
    return out if out is not None else np.zeros((0, 0), dtype=np.float32)


# ---------------------------------------------------------------- build


@dataclass
class BuildReport:
    out: str
    documents: int = 0
    chunks: int = 0
    embedded: int = 0
    reused: int = 0
    removed: int = 0
    index_type: str = ""
    recall_at_10: float | None = None
    seconds: float = 0.0
    embed_seconds: float = 0.0
    load_seconds: float = 0.0  # model load and fingerprint: the fixed cost of any build
    skipped: list[dict[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_text(self) -> str:
        rate = (
            f", embedding {self.embed_seconds:.1f} s = {self.embedded / self.embed_seconds:.0f} chunks/s"
            if self.embedded and self.embed_seconds
            else ""
        )
        lines = [
            f"index {self.out}: {self.documents} documents -> {self.chunks} chunks; embedded {self.embedded}, "
            f"reused {self.reused}, removed {self.removed} ({self.seconds:.1f} s{rate})",
            f"search: {self.index_type}"
            + (f", recall@10 vs exact {self.recall_at_10:.3f}" if self.recall_at_10 is not None else ""),
        ]
        lines += [f"note: {n}" for n in self.notes]
        lines += [f"skipped {s['source']}: {s['reason']}" for s in self.skipped]
        return "\n".join(lines)


def _previous(out: Path, fingerprint: str, chunking: dict) -> tuple[dict[str, np.ndarray], dict, list[str]]:
    """The existing index's vectors by chunk hash and, when it was chunked the same way, its chunks by
    (source, record, document hash); empty when there is none or it used another model."""
    manifest = _read_manifest(out, required=False)
    if not manifest:
        return {}, {}, []
    if manifest["model"]["fingerprint"] != fingerprint:
        return (
            {},
            {},
            [
                f"the existing index was built with another model ({manifest['model']['path']}): every "
                "chunk is embedded again"
            ],
        )
    import faiss

    frame = pd.read_parquet(out / "chunks.parquet")
    index = faiss.read_index(str(out / "index.faiss"))
    vectors = index.reconstruct_n(0, index.ntotal) if index.ntotal else np.zeros((0, index.d), np.float32)
    known: dict[tuple, list[Chunk]] = {}
    same = all(manifest["chunking"].get(k) == chunking[k] for k in ("max_tokens", "overlap", "tokenizer"))
    if same and "doc_hash" in frame.columns:
        for row in frame.itertuples(index=False):
            record = None if pd.isna(row.record) else int(row.record)
            known.setdefault((row.source, record, row.doc_hash), []).append(
                Chunk(row.text, row.source, record, int(row.start), int(row.end), row.hash, row.doc_hash)
            )
    return dict(zip(frame["hash"], vectors)), known, []


def _make_index(vectors: np.ndarray, exact_limit: int, seed: int = 0):
    """(faiss index, type description, recall@10 of the approximate index against exact, or None)."""
    import faiss

    n, dim = vectors.shape
    flat = faiss.IndexFlatIP(dim)
    flat.add(vectors)
    if n <= exact_limit:
        return flat, f"exact (IndexFlatIP, {n} vectors <= {exact_limit})", None
    hnsw = faiss.IndexHNSWFlat(dim, HNSW_M, faiss.METRIC_INNER_PRODUCT)
    hnsw.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
    hnsw.hnsw.efSearch = HNSW_EF_SEARCH
    hnsw.add(vectors)
    # Recall is measured with indexed vectors as queries: no real queries exist at build time.
    queries = vectors[np.random.default_rng(seed).choice(n, min(RECALL_QUERIES, n), replace=False)]
    k = min(10, n)
    _, exact = flat.search(queries, k)
    _, approx = hnsw.search(queries, k)
    recall = float(np.mean([len(set(a) & set(e)) / k for a, e in zip(approx, exact)]))
    return hnsw, f"approximate (HNSW M={HNSW_M}, efSearch={HNSW_EF_SEARCH}; {n} vectors > {exact_limit})", recall


def _versions() -> dict[str, str]:
    import importlib.metadata as md

    out = {"python": platform.python_version(), "index_format": str(INDEX_VERSION)}
    for pkg in ("faiss-cpu", "sentence-transformers", "transformers", "torch", "onnxruntime", "pypdf"):
        try:
            out[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            pass
    return out


def _vectors(
    encoder,
    frame: pd.DataFrame,
    old: dict[str, np.ndarray],
    report: BuildReport,
    batch_size: int,
    progress: Progress | None,
) -> np.ndarray:
    """One vector per chunk row: reused by content hash, else embedded (each distinct new text once)."""
    new_hashes = list(dict.fromkeys(h for h in frame["hash"] if h not in old))
    text_of = dict(zip(frame["hash"], frame["text"]))
    t0 = time.perf_counter()
    fresh = _embed(encoder, [text_of[h] for h in new_hashes], batch_size, progress)
    report.embed_seconds = round(time.perf_counter() - t0, 3)
    vectors_of = {**old, **dict(zip(new_hashes, fresh))}
    report.chunks, report.embedded = len(frame), len(new_hashes)
    report.reused = int(frame["hash"].isin(old.keys()).sum())
    report.removed = len(set(old) - set(frame["hash"]))
    return np.stack([vectors_of[h] for h in frame["hash"]]).astype(np.float32)


def build_index(
    model: str | Path,
    documents: str | Path,
    out: str | Path,
    *,
    chunk_tokens: int | None = None,
    overlap: int = DEFAULT_OVERLAP,
    exact_limit: int = EXACT_LIMIT,
    max_file_mb: float = MAX_FILE_MB,
    batch_size: int = 64,
    progress: Progress | None = None,
    max_chunks: int | None = None,
) -> BuildReport:
    """Build or update the index folder `out` for `documents` (a folder or one file) with `model`. Raises
    DocIndexError when no document is usable (the message lists every skipped file), or before any embedding when
    there are more than `max_chunks` chunks (a shared server's bound on the work of one build)."""
    t0 = time.perf_counter()

    out = Path(out)
    check_index_out(out)
    model_path = check_model(str(model))
    encoder = get_encoder(model_path)
    fingerprint = model_fingerprint(model_path)
    load_seconds = round(time.perf_counter() - t0, 3)
    limit = encoder.max_seq_length - encoder.tokenizer.num_special_tokens_to_add()  # [CLS] and [SEP] count too
    chunking = {
        "max_tokens": min(chunk_tokens or limit, limit),
        "overlap": overlap,
        "tokenizer": type(encoder.tokenizer).__name__,
        "max_file_mb": max_file_mb,
    }
    docs, skipped = read_documents(documents, max_file_mb)
    report = BuildReport(str(out), documents=len(docs), skipped=[asdict(s) for s in skipped], load_seconds=load_seconds)
    if chunk_tokens and chunk_tokens > limit:
        report.notes.append(
            f"chunk size {chunk_tokens} tokens lowered to {limit}: the model reads at most "
            f"{encoder.max_seq_length} tokens (special tokens included)"
        )
    old, known, notes = _previous(out, fingerprint, chunking)
    report.notes += notes
    chunks = chunk_documents(docs, encoder.tokenizer, chunking["max_tokens"], overlap, known)
    if not chunks:
        why = "\n".join(f"  {s.source}: {s.reason}" for s in skipped)
        raise DocIndexError(
            f"no usable documents in {documents}"
            + (f": every file was skipped:\n{why}" if skipped else " (nothing to read there)")
        )
    if max_chunks and len(chunks) > max_chunks:
        raise DocIndexError(
            f"{len(chunks):,} chunks of up to {chunking['max_tokens']} tokens is over this server's limit of "
            f"{max_chunks:,}: index fewer or shorter documents"
        )
    frame = pd.DataFrame([asdict(c) for c in chunks]).astype({"record": "Int64"})
    vectors = _vectors(encoder, frame, old, report, batch_size, progress)
    index, kind, recall = _make_index(vectors, exact_limit)
    report.index_type, report.recall_at_10 = kind, recall
    report.seconds = round(time.perf_counter() - t0, 3)
    manifest = _manifest(model_path, fingerprint, encoder, vectors, chunking, index, kind, recall, exact_limit)
    manifest |= {"documents": str(Path(documents).resolve()), "chunks": len(frame)}
    _write_swap(out, index, frame, manifest, report)
    return report


def _manifest(model_path, fingerprint, encoder, vectors, chunking, index, kind, recall, exact_limit) -> dict:
    """manifest.json: what a loader checks (model fingerprint, dimension, chunking) and what a reader wants to know."""
    return {
        "version": INDEX_VERSION,
        "model": {"path": model_path, "fingerprint": fingerprint, "max_seq_length": encoder.max_seq_length},
        "dimension": int(vectors.shape[1]),
        "normalized": True,
        "metric": "cosine (inner product of unit vectors)",
        "chunking": chunking,
        "index": {
            "type": kind,
            "faiss_class": type(index).__name__,
            "exact_limit": exact_limit,
            "recall_at_10": recall,
        },
        "built": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "versions": _versions(),
    }


def check_index_out(out: Path) -> None:
    """Building replaces `out` whole: allowed only for a missing or empty folder or an earlier index, so a wrong
    --out (the documents folder, a model, any folder of files) is refused instead of deleted."""
    if out.exists() and not out.is_dir():
        raise DocIndexError(f"--out '{out}' is a file; give a folder for the index")
    if out.is_dir() and any(out.iterdir()) and not (out / "manifest.json").is_file():
        raise DocIndexError(
            f"--out '{out}' is a folder that holds other files and no index (no manifest.json); building would "
            "replace it. Choose a new or empty folder, or an earlier index."
        )


def _write_swap(out: Path, index, frame: pd.DataFrame, manifest: dict, report: BuildReport) -> None:
    import faiss

    check_index_out(out)  # again: the folder may have changed during the build
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.building-", dir=out.parent))
    old = out.with_name(f".{out.name}.old-{time.time_ns()}")
    try:
        faiss.write_index(index, str(tmp / "index.faiss"))
        frame.to_parquet(tmp / "chunks.parquet", index=False)
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2), encoding="utf-8")
        (tmp / "report.json").write_text(json.dumps(report.to_dict(), indent=2), encoding="utf-8")
        if out.exists():
            out.rename(old)  # two renames on one file system: the window without an index is microseconds
        tmp.rename(out)
    finally:
        if old.exists() and not out.exists():  # interrupted between the renames: the previous index goes back
            old.rename(out)
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(old, ignore_errors=True)


# ---------------------------------------------------------------- load and search


def _read_manifest(path: Path, required: bool = True) -> dict | None:
    f = Path(path) / "manifest.json"
    if not f.exists():
        if required:
            raise DocIndexError(
                f"no index at {path} (no manifest.json): build one with "
                f"`python -m core index build --model DIR --documents PATH --out {path}`"
            )
        return None
    try:
        return json.loads(f.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise DocIndexError(f"{f} is not valid JSON ({exc}): rebuild the index") from None


def _check_fingerprint(path: Path, manifest: dict, model_path: str, name: str) -> None:
    built, got = manifest["model"], model_fingerprint(model_path)
    if got != built["fingerprint"]:
        raise IndexMismatchError(
            f"index {path} was built with model {built['path']} (fingerprint {built['fingerprint']}), but "
            f"{model_path} has fingerprint {got}: it is another model (or was retrained), so its query vectors "
            "would not match the index. Search with the model the index was built with, or rebuild the index: "
            f"`python -m core index build --model {name} --documents {manifest.get('documents')} --out {path}`."
        )


def check_index_model(path: str | Path, model: str | Path) -> None:
    """Raise IndexMismatchError unless the index folder at `path` was built with `model`."""
    _check_fingerprint(Path(path), _read_manifest(Path(path)), resolve_model(str(model)), str(model))


def load_index(path: str | Path, model: str | Path | None = None, fast_queries: bool = False) -> DocIndex:
    """Open an index folder. Queries are encoded by `model` (a model folder or its ONNX copy; default: the model
    folder holding the index, else the model it was built with), which must have the fingerprint recorded at
    build time. `fast_queries` encodes single queries with onnxruntime (a one-off ~2 s export; for servers)."""
    import faiss

    path = Path(path)
    manifest = _read_manifest(path)
    # An index shipped inside its model's folder (model zip: <model>/index/) is searched with that folder.
    inside = is_model_dir(path.parent) and path.name == "index"
    name = str(model) if model else str(path.parent) if inside else manifest["model"]["path"]
    try:
        model_path = resolve_model(name)
    except Exception as exc:
        raise DocIndexError(
            f"the index at {path} needs its model to encode queries, but {exc} "
            "Pass --model with the model folder the index was built with."
        ) from None
    _check_fingerprint(path, manifest, model_path, name)
    chunks = pd.read_parquet(path / "chunks.parquet")
    index = faiss.read_index(str(path / "index.faiss"))
    if index.ntotal != len(chunks):
        raise DocIndexError(f"index {path} is inconsistent ({index.ntotal} vectors, {len(chunks)} chunks): rebuild it")
    return DocIndex(path, manifest, chunks, index, get_encoder(model_path), fast_queries)


def zip_index(index_dir: str | Path, target: str | Path) -> Path:
    """The index folder as a zip (files at the top level: unzip and `load_index(folder)`)."""
    import zipfile

    index_dir, target = Path(index_dir), Path(target)
    _read_manifest(index_dir)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".tmp")
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        for f in sorted(index_dir.iterdir()):
            if f.is_file():
                zf.write(f, f.name)
    tmp.replace(target)
    return target

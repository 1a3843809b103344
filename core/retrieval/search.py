"""Similarity and top-k search with faiss; one index per (model, corpus), built once and cached."""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.models.encoding import encode_precision, inference_model
from core.models.load import model_prompts, resolve_model, shared_model
from core.models.onnx_query import query_encoder
from core.training.mining import model_cache_dir

MAX_INDEXES = 8  # each 10k-document MiniLM index is ~15 MB; a handful covers base/fine-tuned x a few corpora


def check_query(query: object) -> None:
    """An empty query embeds to the model's mean direction: it would return confident-looking hits for nothing."""
    if not isinstance(query, str) or not query.strip():
        raise ValueError("the query is empty: type a question")


def check_k(k: object) -> None:
    """How many results: a whole number ≥ 1 (faiss asserts on 0, and a negative k silently meant 1)."""
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"k (results per query) must be a whole number of at least 1, got {k!r}")


@dataclass
class Hit:
    rank: int
    index: int
    score: float
    text: str


def corpus_hash(corpus: list[str]) -> str:
    h = hashlib.sha256()
    for t in corpus:
        h.update(t.encode("utf-8"))
        h.update(b"\0")
    return h.hexdigest()[:16]


class SearchIndex:
    """Normalised embeddings of `corpus` under one model, in a faiss inner-product (= cosine) index."""

    def __init__(
        self,
        model_name: str,
        corpus: list[str],
        cache_dir: str | None = None,
        batch_size: int = 16,
        prompts: dict[str, str | None] | None = None,
    ):
        """`prompts`: {"query", "document"} prompts (None or missing = the model's own saved ones)."""
        import faiss

        self.model_path = resolve_model(model_name)
        self.model = shared_model(self.model_path)
        self.prompts = model_prompts(self.model, prompts)
        # One encoder for documents and queries, the one evaluations use: bf16 where this machine measured it faster.
        self.precision = encode_precision(self.model)
        self.encoder = inference_model(self.model)  # once: a bf16 copy per query cost ~100 ms (a deep copy)
        self.corpus = list(corpus)
        emb = None
        cache_file = None
        if cache_dir:
            cache_file = (
                Path(model_cache_dir(cache_dir, self.model_path, self.model.max_seq_length))
                / f"search_{self.precision}_{corpus_hash([self.prompts['document'], *self.corpus])}.npy"
            )
            if cache_file.exists():
                emb = np.load(cache_file)
        if emb is None:  # encode() sorts by length itself; bf16 where faster here (core/models/encoding.py)
            emb = self.encoder.encode(
                self.corpus,
                batch_size=batch_size,
                prompt=self.prompts["document"],
                normalize_embeddings=True,
                convert_to_numpy=True,
            )
            if cache_file:
                cache_file.parent.mkdir(parents=True, exist_ok=True)
                np.save(cache_file, emb)
        self.embeddings = emb.astype(np.float32)
        self.index = faiss.IndexFlatIP(self.embeddings.shape[1])
        self.index.add(self.embeddings)
        # onnxruntime (fp32) for single queries: ~2 s to export, each query then costs 0.4x. Under bf16 documents the
        # queries stay on the bf16 copy, so a query's ranks are those of the summary and of the run's evaluation.
        self.query_encoder = query_encoder(self.model) if self.precision == "fp32" else None

    def _encode(self, query: str) -> np.ndarray:
        if self.query_encoder is not None:
            return self.query_encoder(query, prompt=self.prompts["query"])
        return self.encode_queries([query])

    def encode_queries(self, queries: list[str]) -> np.ndarray:
        """Normalised query embeddings, with the index's query prompt, from the encoder the documents had (and the
        run's evaluation has): the Compare summary and the evaluator must rank with the same numbers."""
        return self.encoder.encode(
            queries, prompt=self.prompts["query"], normalize_embeddings=True, convert_to_numpy=True
        ).astype(np.float32)

    def _scores(self, query: str) -> np.ndarray:
        import torch

        return (torch.from_numpy(self.embeddings) @ torch.from_numpy(self._encode(query)[0])).numpy()

    def search(self, query: str, k: int = 10) -> list[Hit]:
        check_k(k)
        check_query(query)
        scores, ids = self.index.search(query_pool().submit(self._encode, query).result(), min(k, len(self.corpus)))
        return [
            Hit(r + 1, int(i), float(s), self.corpus[i]) for r, (s, i) in enumerate(zip(scores[0], ids[0])) if i >= 0
        ]

    def rank_of(self, query: str, text: str) -> int | None:
        """1-based rank of `text` for `query` over the whole corpus (None when not in it)."""
        try:
            target = self.corpus.index(text)
        except ValueError:
            return None
        return int(ranks_of(query_scores([self], query)[0], np.array([target]))[0])


_lock = threading.Lock()
_indexes: OrderedDict[tuple, SearchIndex] = OrderedDict()
_query_pool: ThreadPoolExecutor | None = None


def query_pool() -> ThreadPoolExecutor:
    """Two workers that run torch on one thread each. One short query gains nothing from torch's intra-op threads:
    their barriers cost more than they save (3x slower on a busy 2-core machine, BENCHMARKS.md), while the two
    models of a comparison encode side by side on two cores."""
    global _query_pool
    with _lock:
        if _query_pool is None:
            import torch

            threads = torch.get_num_threads()
            pool = ThreadPoolExecutor(2, thread_name_prefix="query", initializer=torch.set_num_threads, initargs=(1,))
            started = threading.Barrier(3)
            for _ in range(2):  # start both workers now (a busy worker makes the pool start the next one)...
                pool.submit(started.wait)
            started.wait()
            # ...then restore the default that set_num_threads also changed for threads started later.
            torch.set_num_threads(threads)
            _query_pool = pool
    return _query_pool


def query_scores(indexes: list[SearchIndex], query: str) -> list[np.ndarray]:
    """One query's cosine score against every document of each index, the models side by side. The scores are a
    torch product on the worker's one thread: numpy's BLAS threads would spin on the cores the workers need."""
    futures = [query_pool().submit(ix._scores, query) for ix in indexes]
    return [f.result() for f in futures]


def ranks_of(scores: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """1-based ranks of documents `ids` under one query's `scores`; ties share the better rank."""
    return (scores[None, :] > scores[ids][:, None]).sum(axis=1) + 1


def get_index(
    model_name: str, corpus: list[str], cache_dir: str | None = None, prompts: dict[str, str | None] | None = None
) -> SearchIndex:
    """The cached index for (model, corpus, prompts), building it on first use."""
    # Python's hash of the texts (each str caches its own) costs ~0.1 ms for 10k documents, sha256 ~10 ms: this
    # lookup runs on every Compare query, the sha256 only names the on-disk cache.
    path = resolve_model(model_name)
    precision = encode_precision(shared_model(path))
    key = (path, precision, len(corpus), hash(tuple(corpus)), tuple(sorted((prompts or {}).items())))
    with _lock:
        if key in _indexes:
            _indexes.move_to_end(key)
            return _indexes[key]
    index = SearchIndex(model_name, corpus, cache_dir, prompts=prompts)
    with _lock:
        _indexes[key] = index
        while len(_indexes) > MAX_INDEXES:
            _indexes.popitem(last=False)
    return index


def similarity(
    model_name: str, text: str, others: list[str], prompts: dict[str, str | None] | None = None
) -> list[float]:
    """Cosine similarity of `text` to each of `others` under one model. A symmetric comparison: every text gets the
    query prompt (`prompts`, else the model's own), as scored pairs are trained."""
    if not (text or "").strip() or not others or any(not (o or "").strip() for o in others):
        raise ValueError("similarity needs a text and at least one other, none of them empty")
    model = shared_model(model_name)
    emb = model.encode(
        [text, *others], prompt=model_prompts(model, prompts)["query"], normalize_embeddings=True, convert_to_numpy=True
    )
    return [float(s) for s in emb[1:] @ emb[0]]

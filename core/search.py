"""Similarity and top-k search with faiss; one index per (model, corpus), built once and cached."""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .mining import model_cache_dir
from .models import resolve_model, shared_model

MAX_INDEXES = 8  # each 10k-document MiniLM index is ~15 MB; a handful covers base/fine-tuned x a few corpora


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

    def __init__(self, model_name: str, corpus: list[str], cache_dir: str | None = None, batch_size: int = 64):
        import faiss

        self.model_path = resolve_model(model_name)
        self.model = shared_model(self.model_path)
        self.corpus = list(corpus)
        emb = None
        cache_file = None
        if cache_dir:
            cache_file = Path(model_cache_dir(cache_dir, self.model_path)) / f"search_{corpus_hash(self.corpus)}.npy"
            if cache_file.exists():
                emb = np.load(cache_file)
        if emb is None:
            # Sorting by length keeps padding per batch small: a large speed-up on mixed-length corpora.
            order = np.argsort([len(t) for t in self.corpus])
            sorted_emb = self.model.encode([self.corpus[i] for i in order], batch_size=batch_size,
                                           normalize_embeddings=True, convert_to_numpy=True)
            emb = np.empty_like(sorted_emb)
            emb[order] = sorted_emb
            if cache_file:
                cache_file.parent.mkdir(parents=True, exist_ok=True)
                np.save(cache_file, emb)
        self.embeddings = emb.astype(np.float32)
        self.index = faiss.IndexFlatIP(self.embeddings.shape[1])
        self.index.add(self.embeddings)

    def search(self, query: str, k: int = 10) -> list[Hit]:
        q = self.model.encode([query], normalize_embeddings=True, convert_to_numpy=True).astype(np.float32)
        scores, ids = self.index.search(q, min(k, len(self.corpus)))
        return [Hit(r + 1, int(i), float(s), self.corpus[i]) for r, (s, i) in enumerate(zip(scores[0], ids[0])) if i >= 0]

    def rank_of(self, query: str, text: str) -> int | None:
        """1-based rank of `text` for `query` over the whole corpus (None when not in it)."""
        try:
            target = self.corpus.index(text)
        except ValueError:
            return None
        q = self.model.encode([query], normalize_embeddings=True, convert_to_numpy=True)[0]
        scores = self.embeddings @ q
        return int((scores > scores[target]).sum()) + 1


_lock = threading.Lock()
_indexes: OrderedDict[tuple[str, str], SearchIndex] = OrderedDict()


def get_index(model_name: str, corpus: list[str], cache_dir: str | None = None) -> SearchIndex:
    """The cached index for (model, corpus), building it on first use."""
    key = (resolve_model(model_name), corpus_hash(corpus))
    with _lock:
        if key in _indexes:
            _indexes.move_to_end(key)
            return _indexes[key]
    index = SearchIndex(model_name, corpus, cache_dir)
    with _lock:
        _indexes[key] = index
        while len(_indexes) > MAX_INDEXES:
            _indexes.popitem(last=False)
    return index


def similarity(model_name: str, text: str, others: list[str]) -> list[float]:
    """Cosine similarity of `text` to each of `others` under one model."""
    model = shared_model(model_name)
    emb = model.encode([text, *others], normalize_embeddings=True, convert_to_numpy=True)
    return [float(s) for s in emb[1:] @ emb[0]]

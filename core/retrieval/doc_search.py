"""A loaded document index: the encoder of its queries (the model, or its ONNX copy) and top-k search over its
chunks. Building, loading and checking index folders is core/retrieval/doc_index.py's."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from core.models.encoding import inference_model
from core.models.load import resolve_model, shared_model
from core.models.onnx_export import OnnxEmbedder
from core.models.onnx_query import query_encoder
from core.retrieval.search import check_k, check_query


def get_encoder(model_dir: str | Path):
    """An object with `encode(texts, batch_size) -> normalised float32 (n, dim)`, `tokenizer`, `max_seq_length`."""
    path = resolve_model(str(model_dir))
    if (Path(path) / "onnx_config.json").exists():
        return OnnxEmbedder(path)
    return TorchEncoder(path)


class TorchEncoder:
    def __init__(self, path: str):

        self.model = shared_model(path)
        self.tokenizer = self.model.tokenizer
        self.max_seq_length = int(self.model.max_seq_length)
        self.bulk = None

    def encode(self, texts: list[str], batch_size: int = 16) -> np.ndarray:
        return self._encode(self.model, texts, batch_size)

    def encode_documents(self, texts: list[str], batch_size: int = 16) -> np.ndarray:
        """Many documents: bf16 where this machine encodes faster with it (core/models/encoding.py); queries stay fp32."""

        if self.bulk is None:
            self.bulk = inference_model(self.model)
        return self._encode(self.bulk, texts, batch_size)

    @staticmethod
    def _encode(model, texts: list[str], batch_size: int) -> np.ndarray:
        emb = model.encode(texts, batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True)
        return np.asarray(emb, dtype=np.float32).reshape(len(texts), -1)

    def encode_query(self, text: str) -> np.ndarray:
        """One text through onnxruntime (core/models/onnx_query.py: ~2x faster, checked equal to torch) once exported."""

        fast = query_encoder(self.model)
        return fast(text) if fast is not None else self.encode([text])


@dataclass
class ChunkHit:
    rank: int
    score: float
    text: str
    source: str
    record: int | None
    start: int
    end: int
    id: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class DocIndex:
    """A loaded index folder and the model that encodes its queries."""

    def __init__(self, path: Path, manifest: dict, chunks: pd.DataFrame, index, encoder, fast_queries: bool = False):
        self.path, self.manifest, self.chunks, self.index, self.encoder = path, manifest, chunks, index, encoder
        self.fast_queries = fast_queries and hasattr(encoder, "encode_query")

    def __len__(self) -> int:
        return int(self.index.ntotal)

    def search_many(self, queries: list[str], k: int = 5, batch_size: int = 64) -> list[list[ChunkHit]]:

        check_k(k)
        if not queries:
            return []
        if self.fast_queries and len(queries) == 1:
            emb = self.encoder.encode_query(queries[0])
        else:
            emb = self.encoder.encode(list(queries), batch_size)
        scores, ids = self.index.search(emb, min(max(1, int(k)), len(self)))
        rows = self.chunks
        return [
            [
                ChunkHit(
                    r + 1,
                    float(s),
                    rows.at[i, "text"],
                    rows.at[i, "source"],
                    None if pd.isna(rows.at[i, "record"]) else int(rows.at[i, "record"]),
                    int(rows.at[i, "start"]),
                    int(rows.at[i, "end"]),
                    int(i),
                )
                for r, (s, i) in enumerate(zip(srow, irow))
                if i >= 0
            ]
            for srow, irow in zip(scores, ids)
        ]

    def search(self, query: str, k: int = 5) -> list[ChunkHit]:

        check_query(query)
        return self.search_many([query], k)[0]

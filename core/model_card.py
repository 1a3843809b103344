"""The model card (README.md) written next to a fine-tuned model: base model, data, config, before/after table."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import yaml

from .config import EmbedConfig
from .evaluation import metrics_table

EXAMPLE_CHARS = 160  # a usage example, not the whole document


def examples_of(prep) -> list[str]:
    """Two texts of the user's own data for the usage example: a query and its document (or a scored pair)."""
    for frame in (getattr(prep, "test", None), getattr(prep, "train", None)):
        if frame is None or not len(frame):
            continue
        cols = [c for c in (("query", "document"), ("query", "positive"), ("doc1", "doc2")) if set(c) <= set(frame)]
        if cols:
            row = frame.iloc[0]
            return [_short(str(row[c])) for c in cols[0]]
    return []


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= EXAMPLE_CHARS else text[: EXAMPLE_CHARS - 1].rstrip() + "…"


def write_model_card(model_dir: str | Path, cfg: EmbedConfig, data: dict[str, Any], metrics: dict[str, Any],
                     examples: list[str] | None = None) -> Path:
    header = {
        "library_name": "sentence-transformers",
        "pipeline_tag": "sentence-similarity",
        "tags": ["sentence-transformers", "feature-extraction", "sentence-similarity", "embedding-studio"],
        "base_model": cfg.model_name,
    }
    fmt = data.get("format")
    loss = cfg.loss if cfg.loss != "auto" else (
        "CoSENTLoss" if fmt == "scored" else
        "CachedMultipleNegativesRankingLoss" if cfg.mini_batch_size else "MultipleNegativesRankingLoss")
    if cfg.matryoshka_dims:
        loss = f"MatryoshkaLoss over {loss} (dims {cfg.matryoshka_dims})"
    mined = fmt != "scored" and cfg.mining.enabled and cfg.mining.num_negatives > 0
    timing = metrics.get("timing", {})
    texts = examples if examples and len(examples) >= 2 else ["How do I reset my password?",
                                                              "Steps to change a forgotten password"]
    text = f"""---
{yaml.safe_dump(header, sort_keys=False).strip()}
---

# Fine-tuned {cfg.model_name.split('/')[-1]}

A [sentence-transformers](https://www.sbert.net) model fine-tuned from `{cfg.model_name}` on `{cfg.dataset_name}`
with {loss}{' and mined hard negatives' if mined else ''}.

```python
from sentence_transformers import SentenceTransformer

model = SentenceTransformer("{Path(cfg.output_dir).as_posix()}")
embeddings = model.encode([{json.dumps(texts[0], ensure_ascii=False)}, {json.dumps(texts[1], ensure_ascii=False)}])
print(model.similarity(embeddings, embeddings))
```

## Data
- file: `{data.get('path')}`, format: **{fmt}**, rows: {data.get('rows')} (train {data.get('train_rows')}, test {data.get('test_rows')})
- sha256 (content): `{data.get('hash')}`
- evaluation corpus: {data.get('corpus_size')} documents

## Evaluation (test split, before → after)
{metrics_table(metrics.get('before', {}), metrics.get('after', {}), cfg.evaluation.metrics + ['spearman', 'triplet_accuracy'])}

Primary metric: `{metrics.get('primary')}`. Steps: {metrics.get('steps')}. Training time: {timing.get('train_s', '?')} s.

## Config
```yaml
{cfg.to_yaml().strip()}
```

Trained on {time.strftime('%Y-%m-%d')} with embedding-studio.
"""
    path = Path(model_dir) / "README.md"
    path.write_text(text, encoding="utf-8")
    return path

"""The model card (README.md) written next to a fine-tuned model: base model, data, config, before/after table."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import yaml

from .config import EmbedConfig
from .evaluation import metrics_table


def write_model_card(model_dir: str | Path, cfg: EmbedConfig, data: dict[str, Any], metrics: dict[str, Any]) -> Path:
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
    prompts = _saved_prompts(model_dir)
    prompt_line = ("\nPrompts (saved with the model; `model.encode_query` / `model.encode_document` apply them): "
                   + ", ".join(f"{k} `{v}`" for k, v in prompts.items()) + ".\n") if prompts else ""
    text = f"""---
{yaml.safe_dump(header, sort_keys=False).strip()}
---

# Fine-tuned {cfg.model_name.split('/')[-1]}

A [sentence-transformers](https://www.sbert.net) model fine-tuned from `{cfg.model_name}` on `{cfg.dataset_name}`
with {loss}{' and mined hard negatives' if mined else ''}.
{prompt_line}
```python
from sentence_transformers import SentenceTransformer

model = SentenceTransformer("{Path(cfg.output_dir).as_posix()}")
embeddings = model.encode(["How do I reset my password?", "Steps to change a forgotten password"])
print(model.similarity(embeddings, embeddings))
```

## Data
- file: `{data.get('path')}`, format: **{fmt}**, rows: {data.get('rows')} (train {data.get('train_rows')}, test {data.get('test_rows')})
- sha256 (content): `{data.get('hash')}`
- evaluation corpus: {data.get('corpus_size')} documents

## Evaluation (test split, before → after)
{metrics_table(metrics.get('before', {}), metrics.get('after', {}), cfg.evaluation.metrics)}

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


def _saved_prompts(model_dir: str | Path) -> dict[str, str]:
    """The non-empty query/document prompts in the saved model's config_sentence_transformers.json."""
    import json

    try:
        saved = json.loads((Path(model_dir) / "config_sentence_transformers.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    prompts = saved.get("prompts") or {}
    return {k: prompts[k] for k in ("query", "document") if prompts.get(k)}

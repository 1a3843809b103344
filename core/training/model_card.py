"""The model card (README.md) written next to a fine-tuned model: base model, data, config, before/after table."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import yaml

from core.config.rules import loss_kind
from core.config.schema import EmbedConfig
from core.evaluation.evaluators import metrics_table
from core.training.losses import LOSS_CLASSES

PATH_KEYS = ("dataset_path", "corpus_path", "output_dir", "runs_dir", "cache_dir")


def portable_config(cfg: EmbedConfig) -> dict[str, Any]:
    """The config with file and folder names only: a card travels with the model and must not carry the paths of
    the machine (or the visitor folder) it was trained in."""
    data = cfg.to_dict()
    for key in PATH_KEYS:
        if data.get(key):
            data[key] = Path(data[key]).name
    if data["mining"].get("exclude_path"):
        data["mining"]["exclude_path"] = Path(data["mining"]["exclude_path"]).name
    for key in ("model_name", "mining_model_name"):
        if data.get(key) and Path(data[key]).is_absolute():
            data[key] = Path(data[key]).name
    if isinstance(data.get("resume"), str):
        data["resume"] = True
    return data


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


def _loss_text(cfg: EmbedConfig, fmt: str | None) -> str:
    loss = cfg.loss if cfg.loss != "auto" else LOSS_CLASSES[loss_kind(cfg, fmt)]
    return f"MatryoshkaLoss over {loss} (dims {cfg.matryoshka_dims})" if cfg.matryoshka_dims else loss


def _prompt_line(prompts: dict[str, str]) -> str:
    if not prompts:
        return ""
    return (
        "\nPrompts (saved with the model; `model.encode_query` / `model.encode_document` apply them): "
        + ", ".join(f"{k} `{v}`" for k, v in prompts.items())
        + ".\n"
    )


def write_model_card(
    model_dir: str | Path,
    cfg: EmbedConfig,
    data: dict[str, Any],
    metrics: dict[str, Any],
    examples: list[str] | None = None,
) -> Path:
    base = portable_config(cfg)["model_name"]
    header = {
        "library_name": "sentence-transformers",
        "pipeline_tag": "sentence-similarity",
        "tags": ["sentence-transformers", "feature-extraction", "sentence-similarity", "embedding-studio"],
        "base_model": base,
    }
    fmt = data.get("format")
    loss = _loss_text(cfg, fmt)
    mined = fmt != "scored" and cfg.mining.enabled and cfg.mining.num_negatives > 0
    timing = metrics.get("timing", {})
    prompt_line = _prompt_line(_saved_prompts(model_dir))
    texts = (
        examples
        if examples and len(examples) >= 2
        else ["How do I reset my password?", "Steps to change a forgotten password"]
    )
    text = f"""---
{yaml.safe_dump(header, sort_keys=False).strip()}
---

# Fine-tuned {base.split("/")[-1]}

A [sentence-transformers](https://www.sbert.net) model fine-tuned from `{base}` on `{cfg.dataset_name}`
with {loss}{" and mined hard negatives" if mined else ""}.
{prompt_line}
```python
from sentence_transformers import SentenceTransformer

model = SentenceTransformer("{Path(cfg.output_dir).name}")
embeddings = model.encode([{json.dumps(texts[0], ensure_ascii=False)}, {json.dumps(texts[1], ensure_ascii=False)}])
print(model.similarity(embeddings, embeddings))
```

{search_section(Path(cfg.output_dir).name)}
## Data
- file: `{Path(str(data.get("path") or "")).name}`, format: **{fmt}**, rows: {data.get("rows")} (train {data.get("train_rows")}, test {data.get("test_rows")})
- sha256 (content): `{data.get("hash")}`
- evaluation corpus: {data.get("corpus_size")} documents

## Evaluation (test split, before → after)
{metrics_table(metrics.get("before", {}), metrics.get("after", {}), cfg.evaluation.metrics)}

Primary metric: `{metrics.get("primary")}`. Steps: {metrics.get("steps")}. Training time: {timing.get("train_s", "?")} s.

## Config
```yaml
{yaml.safe_dump(portable_config(cfg), sort_keys=False, allow_unicode=True).strip()}
```

Trained on {time.strftime("%Y-%m-%d")} with embedding-studio.
"""
    path = Path(model_dir) / "README.md"
    path.write_text(text, encoding="utf-8")
    return path


def search_section(model_dir: str) -> str:
    """How to index documents with the model and search them; an `index/` folder in the model folder (the Export
    tab's zip can include one) loads with plain faiss and pandas, without this project."""
    return f"""## Search your documents

```bash
python -m core index build --model {model_dir} --documents data/raw/domain_docs --out {model_dir}/index
python -m core index search --index {model_dir}/index "How do I reset my password?" -k 5
```

When this folder holds an `index/` (chunk embeddings made by this model), search it with faiss and pandas alone:

```python
import faiss, pandas as pd
from sentence_transformers import SentenceTransformer

model = SentenceTransformer("{model_dir}")
index = faiss.read_index("{model_dir}/index/index.faiss")
chunks = pd.read_parquet("{model_dir}/index/chunks.parquet")  # text, source, record, start, end, hash
scores, ids = index.search(model.encode(["How do I reset my password?"], normalize_embeddings=True), 5)
for score, i in zip(scores[0], ids[0]):
    print(f"{{score:.3f}}  {{chunks.source[i]}}  {{chunks.text[i][:100]}}")
```
"""


def _saved_prompts(model_dir: str | Path) -> dict[str, str]:
    """The non-empty query/document prompts in the saved model's config_sentence_transformers.json."""
    import json

    try:
        saved = json.loads((Path(model_dir) / "config_sentence_transformers.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    prompts = saved.get("prompts") or {}
    return {k: prompts[k] for k in ("query", "document") if prompts.get(k)}

"""Everything between a config and the trainer: dataset resolution, validation, split, corpus, mining.

`python -m core mine` stops here; `python -m core train` goes on to `training.py`. Both write the same
artifacts into the run folder (data.json, mined.parquet, mining_stats.json, train_table.parquet).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from core.config.assets import HUB_ID, TOY_DATASET, TOY_NAMES
from core.config.rules import check_loss
from core.config.schema import SEED_DATASET_PATH, EmbedConfig
from core.data import validate as data_mod
from core.evaluation.evaluators import documents_of
from core.models.encoding import counting, inference_model
from core.models.load import hub_offline, load_model, model_prompts, resolve_miner, resolve_model
from core.runs.events import EventWriter
from core.runs.folders import DATA_FILE, MINED_FILE, MINING_STATS_FILE, write_json
from core.training.mining import (
    MiningResult,
    easiest_rows,
    mine,
    model_cache_dir,
    read_exclusions,
    training_table,
)

log = logging.getLogger("core")
TRAIN_TABLE = "train_table.parquet"


class DatasetNotFound(FileNotFoundError):
    pass


def resolve_dataset(cfg: EmbedConfig) -> str:
    """`dataset_path` if set; else `dataset_name` as a file or folder, as the guide's toy name (its step-1 file
    data/raw/embedding_dataset.jsonl where one made it, else the copy shipped with the package), or as a cached or
    reachable hub dataset. Anything else is an error that lists what was tried: a name never silently becomes
    other data."""
    if cfg.dataset_path:
        if Path(cfg.dataset_path).exists():
            return cfg.dataset_path
        raise DatasetNotFound(f"dataset_path '{cfg.dataset_path}' does not exist (looked from {Path.cwd()}).")
    name = cfg.dataset_name
    if Path(name).exists():
        return name
    if name in TOY_NAMES:
        local = Path(SEED_DATASET_PATH)
        return str(local) if local.is_file() else str(TOY_DATASET)
    tried = [f"a file or folder '{name}' (looked from {Path.cwd()})"]
    if HUB_ID.fullmatch(name) and Path(name).suffix.lower() not in _FILE_SUFFIXES:
        hub = _hub_dataset(name, cfg.cache_dir)
        if hub:
            return hub
        why = (
            "HF_HUB_OFFLINE or HF_DATASETS_OFFLINE is set"
            if _datasets_offline()
            else "not cached, and the hub did not answer or has no such dataset"
        )
        tried.append(f"the hub dataset '{name}' ({why})")
    else:
        tried.append("a hub dataset id (that needs the form owner/name)")
    raise DatasetNotFound(
        f"dataset_name '{name}' names no dataset. Tried " + "; ".join(tried) + ". Set dataset_path=FILE (JSONL, "
        "JSON, CSV, TSV or Parquet) and keep dataset_name as the run's label, or use dataset_name: "
        f"toy_embedding_dataset for the guide's eight toy pairs ({SEED_DATASET_PATH})."
    )


_FILE_SUFFIXES = {".jsonl", ".json", ".csv", ".tsv", ".parquet", ".txt"}  # a missing file, not a hub id


def _datasets_offline() -> bool:
    return hub_offline() or os.environ.get("HF_DATASETS_OFFLINE", "").lower() in {"1", "true", "yes"}


def _hub_dataset(name: str, cache_dir: str) -> str | None:
    """A hub dataset id, only when it is cached or the hub answers quickly; saved to disk once so reading is local."""
    target = Path(cache_dir) / "datasets" / name.replace("/", "__")
    if target.exists():
        return str(target)
    if _datasets_offline():
        return None
    try:
        from datasets import load_dataset
        from huggingface_hub import dataset_info

        dataset_info(name, timeout=5)
        ds = load_dataset(name, split="train")
        ds.save_to_disk(str(target))
        return str(target)
    except Exception as exc:  # unreachable or unknown: the caller reports every place it looked
        log.info("hub dataset %s not available: %s", name, exc)
        return None


@dataclass
class Prepared:
    fmt: str
    train: pd.DataFrame
    test: pd.DataFrame
    corpus: list[str]  # every document of the dataset plus corpus_path: the evaluation corpus
    table: pd.DataFrame  # what the trainer sees
    stats: dict[str, Any]
    mining: MiningResult | None = None
    warnings: list[str] = field(default_factory=list)


def load_data(cfg: EmbedConfig, tokenizer=None) -> tuple[str, pd.DataFrame, Any]:
    """Resolve and validate the dataset. Raises data.DataError (with the report) when invalid."""
    path = resolve_dataset(cfg)
    fmt = None if cfg.format == "auto" else cfg.format
    report = data_mod.validate_file(path, format=fmt, tokenizer=tokenizer, max_seq_length=cfg.max_seq_length)
    if not report.ok:
        raise data_mod.DataError(report)
    return path, report.data, report


def load_and_split(cfg: EmbedConfig, run_dir: Path, tokenizer=None) -> Prepared:
    """`split_data`, recorded as data.json in the run folder."""
    prep = split_data(cfg, tokenizer)
    write_json(run_dir / DATA_FILE, prep.stats)
    return prep


def split_data(cfg: EmbedConfig, tokenizer=None) -> Prepared:
    """Resolve, validate and split the data, and gather the evaluation corpus."""
    path, df, report = load_data(cfg, tokenizer)
    fmt = report.format
    check_loss(cfg, fmt)
    notes: list[str] = []  # sizes larger than the data, capped: said once, where the user reads warnings
    train, test = data_mod.split_dataset(df, cfg.sample_size, cfg.test_size, cfg.seed, notes=notes)
    warnings = [str(w) for w in report.warnings] + notes
    overlap = None if test.attrs.get("on_train") else data_mod.overlap_warning(train, test)
    if overlap:
        warnings.append(str(overlap))
    extra = data_mod.read_texts(cfg.corpus_path) if cfg.corpus_path else []
    if cfg.mining.exclude_path and cfg.mining.num_negatives:  # a bad file fails here, not after the model loads
        read_exclusions(cfg.mining.exclude_path)
    # The evaluation corpus: every document of the whole file (not just the sample) plus the extra corpus.
    corpus = list(dict.fromkeys(documents_of(df, fmt) + extra))
    stats = {
        "path": path,
        "format": fmt,
        "rows": len(df),
        "train_rows": len(train),
        "test_rows": len(test),
        "corpus_size": len(corpus),
        "hash": data_mod.dataset_hash(df),
        "stats": report.stats,
        "warnings": warnings,
    }
    return Prepared(fmt, train, test, corpus, pd.DataFrame(), stats, None, warnings)


def build_table(
    prep: Prepared, cfg: EmbedConfig, run_dir: Path, writer: EventWriter, model=None, on_encoded=None
) -> Prepared:
    """Mine (when the format and config ask for it) and build the table the trainer sees, in place on `prep`.
    `on_encoded(phase, texts done, texts in all)` hears the mining encode's progress."""
    fmt, train, test, corpus = prep.fmt, prep.train, prep.test, prep.corpus
    mining_result = None
    mcfg = cfg.mining
    want_mining = (
        fmt != "scored" and mcfg.enabled and mcfg.num_negatives > 0 and (fmt == "pairs" or mcfg.augment_triplets)
    )
    if fmt == "scored":
        table = pd.DataFrame({"sentence1": train["doc1"], "sentence2": train["doc2"], "score": train["similarity"]})
    elif want_mining:
        pos_col = data_mod.positive_column(fmt)
        mining_model, mining_path = _mining_model(cfg, model)
        encoder = inference_model(mining_model, cfg.encode_precision)

        def progress(stage: str, fraction: float) -> None:
            writer.emit("mining_progress", stage=stage, fraction=fraction)

        # What the library encodes: each distinct query, each distinct candidate document (unless cached).
        n_texts = len(set(train["query"])) + len(set(corpus) | set(train[pos_col]))
        # Candidates come from every document available (dataset + corpus_path), not only the training positives.
        with counting(encoder, lambda done: on_encoded("mining", done, n_texts) if on_encoded else None):
            mining_result = mine(
                list(train["query"]),
                list(train[pos_col]),
                encoder,
                mcfg,
                corpus=corpus,
                cache_dir=model_cache_dir(cfg.cache_dir, mining_path, cfg.max_seq_length),
                progress=progress,
                prompts=model_prompts(mining_model, cfg.prompts),
            )
        # A triplet row's own negative is not scored, so only pairs are judged easy.
        skip = easiest_rows(mining_result.gaps, mcfg.skip_easiest) if fmt == "pairs" else set()
        mining_result.stats["skipped_easiest_rows"] = len(skip)
        mining_result.rows.to_parquet(run_dir / MINED_FILE, index=False)
        write_json(run_dir / MINING_STATS_FILE, mining_result.stats)
        writer.emit("mining_done", stats=mining_result.stats)
        held_out = set(test[pos_col])
        pool = [d for d in corpus if d not in held_out] or corpus
        kept = [i for i in range(len(train)) if i not in skip]
        rows = train.iloc[kept]
        table = training_table(
            list(rows["query"]),
            list(rows[pos_col]),
            [mining_result.negatives[i] for i in kept],
            mcfg.num_negatives,
            pool,
            cfg.seed,
            given=list(rows["negative"]) if fmt == "triplets" else None,
            output_format=mcfg.output_format,
        )
    elif fmt == "pairs":
        table = train[["query", "document"]].rename(columns={"document": "positive"}).reset_index(drop=True)
    else:
        table = train[["query", "positive", "negative"]].reset_index(drop=True)
    table.to_parquet(run_dir / TRAIN_TABLE, index=False)
    prep.table, prep.mining = table, mining_result
    return prep


def _mining_model(cfg: EmbedConfig, model):
    """Reuse the base model (still untrained at this point) when it is also the mining model: encode once."""
    name = cfg.mining_model_name or cfg.model_name
    path = resolve_miner(cfg.mining_model_name, cfg.model_name)
    if model is not None and path == resolve_model(cfg.model_name):
        return model, path
    return load_model(name, max_seq_length=cfg.max_seq_length), path

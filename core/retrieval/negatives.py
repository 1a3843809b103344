"""Look at mined negatives and try other thresholds: load a run's mined rows, filter them, keep an exclusion list,
mine without training (a run folder of kind "mine") and re-mine from the cached embeddings for a quick preview.

The studio's Negatives tab is a thin layer over these functions.
"""

from __future__ import annotations

import copy
import json
import re
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from core.config.schema import EmbedConfig, build_config
from core.models.load import load_model, model_prompts, resolve_miner
from core.retrieval.compare import evaluation_data
from core.runs.events import EventWriter
from core.runs.folders import (
    CONFIG_FILE,
    EVENTS_FILE,
    MINED_FILE,
    MINING_STATS_FILE,
    new_run_dir,
    read_json,
    write_json,
)
from core.runs.record import RECORD_FILE, run_record
from core.training.mining import MINED_COLUMNS, MiningResult, load_exclusions, mine, model_cache_dir, read_exclusions
from core.training.prepare import build_table, load_and_split

COLUMNS = MINED_COLUMNS
SORTS: dict[str, tuple[str, bool] | None] = {
    "hardest first (smallest gap)": ("gap", True),
    "negative score, high first": ("negative_score", False),
    "positive score, low first": ("positive_score", True),
    "query A-Z": ("query", True),
    "file order": None,
}
PREVIEW_STATS = [
    "negatives",
    "skipped_by_margin",
    "rows_without_enough_negatives",
    "suspected_false_negatives",
    "excluded",
]


class InspectError(ValueError):
    """Nothing to inspect or mine; the message says why and what to do."""


def effective_config(config: dict[str, Any] | None, dataset: dict[str, Any] | None = None) -> EmbedConfig:
    """The studio's current config, pointed at the dataset loaded in the Data tab when there is one."""
    data = copy.deepcopy(config or {})
    if dataset and dataset.get("path"):
        data["dataset_path"] = str(dataset["path"])
    return build_config(data)


def mining_inputs(cfg: EmbedConfig) -> tuple[list[str], list[str], list[str]]:
    """(queries, positives, candidate corpus) exactly as training mines them: the train split against every
    document of the dataset plus `corpus_path`."""
    data = evaluation_data(cfg)
    if data.fmt == "scored":
        raise InspectError(
            "Scored pairs (doc1, doc2, similarity) are trained with CoSENT: there are no negatives "
            "to mine. Use pairs or triplets data."
        )
    return list(data.train["query"]), list(data.train[data.pos_col]), data.corpus


_model_cache: dict[tuple[str, int | None], Any] = {}


def mining_model(cfg: EmbedConfig) -> tuple[Any, str]:
    """The mining model, kept loaded between re-mines (one at a time: a model is hundreds of MB)."""
    path = resolve_miner(cfg.mining_model_name, cfg.model_name)
    key = (path, cfg.max_seq_length)
    if key not in _model_cache:
        _model_cache.clear()
        model = load_model(path, max_seq_length=cfg.max_seq_length)
        model.eval()
        _model_cache[key] = model
    return _model_cache[key], path


def with_thresholds(cfg: EmbedConfig, **mining: Any) -> EmbedConfig:
    """`cfg` with other mining settings (margin, margin_type, range_min, range_max, num_negatives, ...).
    Raises ConfigError with the config's own message when a value is not allowed."""
    data = cfg.to_dict()
    data["mining"].update(mining)
    return build_config(data)


def remine(cfg: EmbedConfig, progress: Callable[[str, float], None] | None = None) -> MiningResult:
    """Mine the train split again with `cfg.mining`; the embeddings come from the cache after the first time."""
    queries, positives, corpus = mining_inputs(cfg)
    model, path = mining_model(cfg)
    return mine(
        queries,
        positives,
        model,
        cfg.mining,
        corpus=corpus,
        cache_dir=model_cache_dir(cfg.cache_dir, path, cfg.max_seq_length),
        progress=progress,
        prompts=model_prompts(model, cfg.prompts),
    )


def mine_run(cfg: EmbedConfig, runs_dir: str | Path | None = None) -> tuple[Path, MiningResult | None]:
    """What `python -m core mine` does: a run folder of kind "mine" with data.json, mined.parquet,
    mining_stats.json, train_table.parquet and events. Returns (run_dir, result or None when nothing is mined)."""
    fmt = evaluation_data(cfg).fmt  # checked before a run folder exists, so a refusal leaves nothing behind
    m = cfg.mining
    if fmt == "scored":
        mining_inputs(cfg)  # raises with the reason
    if not m.enabled or (fmt == "triplets" and not m.augment_triplets):
        raise InspectError(
            "Nothing to mine with this config: set mining.enabled (triplet data also needs mining.augment_triplets)."
        )
    if m.num_negatives == 0:  # training on pairs alone; asking to mine means "show me the negatives"
        cfg = with_thresholds(cfg, num_negatives=1)
    model, _ = mining_model(cfg)
    run_dir = new_run_dir(runs_dir or cfg.runs_dir, cfg.dataset_name, kind="mine")
    cfg.save(run_dir / CONFIG_FILE)
    write_json(run_dir / RECORD_FILE, run_record(run_dir))
    writer = EventWriter(run_dir / EVENTS_FILE)
    try:
        prep = load_and_split(cfg, run_dir, model.tokenizer)
        writer.emit("run_started", kind="mine", config=cfg.to_dict(), data=prep.stats, run_dir=str(run_dir))
        build_table(prep, cfg, run_dir, writer, model)
    except Exception as exc:  # the run folder records why, the caller shows it
        writer.emit("failed", message=str(exc))
        raise
    writer.emit("finished", run_dir=str(run_dir), model_dir=None, metrics={})
    return run_dir, prep.mining


def load_mined(run_dir: str | Path) -> tuple[pd.DataFrame, dict[str, Any]]:
    """A run's mined rows and mining stats. InspectError when the run has none (yet)."""
    run_dir = Path(run_dir)
    path = run_dir / MINED_FILE
    if not path.exists():
        raise InspectError(
            f"Run {run_dir.name} has no mined negatives (mining still running, a run that trained on "
            "pairs alone with mining.num_negatives=0, or scored data). Press 'Mine now' to mine the "
            "current dataset without training."
        )
    return pd.read_parquet(path), read_json(run_dir / MINING_STATS_FILE, {}) or {}


def filter_mined(
    df: pd.DataFrame, text: str = "", suspects_only: bool = False, sort_by: str = "hardest first (smallest gap)"
) -> pd.DataFrame:
    """Rows whose query, positive or negative contains `text` (case-insensitive), optionally only the suspected
    false negatives, sorted by one of SORTS."""
    out = df
    if suspects_only:
        out = out[out["suspected_false_negative"].astype(bool)]
    text = (text or "").strip().lower()
    if text:
        hit = (
            out["query"].str.lower().str.contains(text, regex=False)
            | out["positive"].str.lower().str.contains(text, regex=False)
            | out["negative"].str.lower().str.contains(text, regex=False)
        )
        out = out[hit]
    if sort_by not in SORTS:
        raise InspectError(f"unknown sort {sort_by!r}; allowed: {list(SORTS)}")
    order = SORTS[sort_by]
    if order:
        out = out.sort_values(order[0], ascending=order[1], kind="stable")
    return out.reset_index(drop=True)


def default_exclusions_path(workspace: str | Path, cfg: EmbedConfig) -> Path:
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(cfg.dataset_path or cfg.dataset_name).stem).strip("_") or "data"
    return Path(workspace).resolve() / "exclusions" / f"{slug}-{time.strftime('%Y%m%d-%H%M%S')}.jsonl"


def update_exclusions(path: str | Path, add: Sequence[tuple[str, str]], remove: Sequence[tuple[str, str]] = ()) -> int:
    """Add and remove (query, negative) pairs in the JSONL `load_exclusions` reads; returns how many it now holds."""
    path = Path(path)
    drop = set(remove)
    current = [p for p in _ordered(path) if p not in drop]
    current = list(dict.fromkeys(current + list(add)))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(
        "".join(json.dumps({"query": q, "negative": n}, ensure_ascii=False) + "\n" for q, n in current),
        encoding="utf-8",
    )
    tmp.replace(path)
    return len(current)


def _ordered(path: Path) -> list[tuple[str, str]]:
    return list(dict.fromkeys(read_exclusions(path, missing_ok=True)))


def set_exclusions(
    config: dict[str, Any],
    workspace: str | Path,
    add: Sequence[tuple[str, str]],
    remove: Sequence[tuple[str, str]] = (),
) -> tuple[dict[str, Any], Path, int]:
    """Record exclusions and point `mining.exclude_path` at them, so the next training (and its saved config)
    skips those negatives. Returns (new config dict, exclusions file, pairs in it)."""
    cfg = build_config(copy.deepcopy(config))
    path = Path(cfg.mining.exclude_path) if cfg.mining.exclude_path else default_exclusions_path(workspace, cfg)
    total = update_exclusions(path, add, remove)
    new = cfg.to_dict()
    new["mining"]["exclude_path"] = str(path)
    return new, path, total


def excluded_pairs(config: dict[str, Any] | None) -> set[tuple[str, str]]:
    path = ((config or {}).get("mining") or {}).get("exclude_path")
    return load_exclusions(path, missing_ok=True)  # the view of a file the next Save creates


def stats_preview(current: dict[str, Any], preview: dict[str, Any]) -> pd.DataFrame:
    """stat | current | preview | change for the counts that thresholds move, plus the mean gap."""
    rows = []
    for key in PREVIEW_STATS:
        a, b = current.get(key), preview.get(key)
        rows.append(
            {
                "stat": key,
                "current": a,
                "preview": b,
                "change": (b - a) if isinstance(a, (int, float)) and isinstance(b, (int, float)) else None,
            }
        )
    ga, gb = (current.get("gap") or {}).get("mean"), (preview.get("gap") or {}).get("mean")
    rows.append(
        {
            "stat": "mean gap",
            "current": ga,
            "preview": gb,
            "change": round(gb - ga, 4) if ga is not None and gb is not None else None,
        }
    )
    return pd.DataFrame(rows, columns=["stat", "current", "preview", "change"])

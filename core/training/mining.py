"""Hard negatives with sentence-transformers' `mine_hard_negatives`, keeping every score for inspection.

The library does the mining (faiss search, ranges, margins, sampling, embedding cache); this module only
maps the config onto it, turns its output into one row per (query, positive, negative) with scores and
ranks, flags likely false negatives, and builds the training table.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import random
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from core.config.schema import MiningConfig
from core.models.devices import local_devices

MINED_COLUMNS = [  # one mined row, as mined.parquet and the Negatives tab hold it
    "query",
    "positive",
    "negative",
    "rank",
    "positive_score",
    "negative_score",
    "gap",
    "suspected_false_negative",
]
DUPLICATE_SLACK = 2  # extra candidates asked for, to replace near-duplicates of the positive
FLAG_MARGIN = 0.02  # with no margin configured, a negative this close to its positive is still suspect


@dataclass
class MiningResult:
    rows: pd.DataFrame  # query, positive, negative, rank, positive_score, negative_score, gap, suspected_false_negative
    stats: dict[str, Any]
    negatives: list[list[str]] = field(default_factory=list)  # per input row, the kept negatives, hardest first
    corpus_embeddings: dict[str, np.ndarray] | None = None  # text -> normalised embedding by the mining model
    gaps: list[float | None] = field(default_factory=list)  # per input row, positive - hardest negative score


def _cached_corpus_embeddings(
    cache_dir: str | None, model, corpus: list[str], corpus_prompt: str | None = None
) -> dict[str, np.ndarray] | None:
    """The corpus embeddings `mine_hard_negatives` saved in its cache, so the baseline evaluation need not encode
    the corpus again. Follows the library's cache naming (sentence_transformers/util/hard_negatives.py); when that
    changes, the file is simply not found and the evaluation encodes as usual."""
    if not cache_dir:
        return None
    name = model.model_card_data.base_model or ""
    digest = hashlib.sha256(repr((name, corpus_prompt, None, corpus)).encode(), usedforsecurity=False).hexdigest()
    path = Path(cache_dir) / f"corpus_embeddings_{digest}.npy"
    if not path.exists():
        return None
    emb = np.load(path)
    return dict(zip(corpus, emb)) if len(emb) == len(corpus) else None


def model_cache_dir(cache_dir: str | Path, model_path: str, max_seq_length: int | None = None) -> str:
    """One embedding-cache folder per model and truncation length: the library keys its cache by text and by the
    model's hub name only (empty for local directories), so two local models, or one model at 32 and at 256 tokens,
    would otherwise share entries."""
    p = Path(model_path)
    stamp = max((f.stat().st_mtime for f in p.glob("*") if f.is_file()), default=0.0) if p.is_dir() else 0.0
    key = hashlib.sha256(f"{p.resolve()}|{stamp}|{max_seq_length}".encode()).hexdigest()[:16]
    return str(Path(cache_dir) / key)


def _normalise(text: str) -> str:
    return re.sub(r"\W+", " ", text.lower()).strip()


def near_duplicate(a: str, b: str) -> bool:
    """Same text up to case, punctuation and spacing, or >= 90% token overlap (a cheap, length-safe test)."""
    na, nb = _normalise(a), _normalise(b)
    if na == nb:
        return True
    ta, tb = set(na.split()), set(nb.split())
    return bool(ta and tb) and len(ta & tb) / len(ta | tb) >= 0.9


def margin_kwargs(cfg: MiningConfig) -> dict[str, Any]:
    if cfg.margin is None:
        return {}
    return {"absolute_margin" if cfg.margin_type == "absolute" else "relative_margin": cfg.margin}


def _settings(cfg: MiningConfig) -> dict[str, Any]:
    """The `mining:` block as mine_hard_negatives' arguments."""
    keys = ("range_min", "range_max", "max_score", "min_score", "sampling_strategy", "batch_size")
    return {k: getattr(cfg, k) for k in keys} | margin_kwargs(cfg)


def is_within_margin(pos: float, neg: float, cfg: MiningConfig) -> bool:
    if cfg.margin is None:
        return neg >= pos - FLAG_MARGIN
    if cfg.margin_type == "absolute":
        return neg > pos - cfg.margin
    return neg > pos - abs(pos) * cfg.margin


logger = logging.getLogger(__name__)

# The library reports its skip counts only as printed text; parse them instead of re-implementing the mining.
_SKIPPED = re.compile(r"Skipped ([\d,]+) potential negatives \(([\d.]+)%\) due to the (\w+) of")


def _skip_counts(printed: str) -> dict[str, int]:
    """{filter: negatives it skipped} from the library's printed statistics; a warning when a line that reads like
    one no longer matches _SKIPPED, so a library upgrade that rewords it cannot silently zero the counts."""
    counts = {m.group(3): int(m.group(1).replace(",", "")) for m in _SKIPPED.finditer(printed)}
    lines = [line for line in printed.splitlines() if "Skipped" in line or "potential negatives" in line]
    if len(lines) > len(counts):
        logger.warning(
            "mining: the library's skip statistics changed format; skip counts may be missing: %s", lines[0][:200]
        )
    return counts


def _faiss_available() -> bool:
    """faiss is a dependency, but the library's exact torch search gives the same neighbours without it."""
    try:
        import faiss  # noqa: F401
    except ImportError:
        return False
    return True


def read_exclusions(path: str | Path, missing_ok: bool = False) -> list[tuple[str, str]]:
    """The (query, negative) pairs of an exclusions JSONL (`mining.exclude_path`), in file order. Raises
    ValueError naming the file and line; a missing file is an error unless `missing_ok` (a typo would otherwise
    train on the negatives the user excluded)."""
    path = Path(path)
    if not path.exists():
        if missing_ok:
            return []
        raise ValueError(f"mining.exclude_path: {path} not found")
    if not path.is_file():
        raise ValueError(f"mining.exclude_path: {path} is not a file")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"mining.exclude_path: cannot read {path} as UTF-8 text ({exc})") from None
    out = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except (json.JSONDecodeError, RecursionError):
            row = None
        if not isinstance(row, dict) or not all(isinstance(row.get(k), str) for k in ("query", "negative")):
            raise ValueError(
                f'{path}: line {number}: expected {{"query": text, "negative": text}} (mining.exclude_path)'
            )
        out.append((row["query"], row["negative"]))
    return out


def load_exclusions(path: str | None, missing_ok: bool = False) -> set[tuple[str, str]]:
    return set(read_exclusions(path, missing_ok)) if path else set()


def mine(
    queries: list[str],
    positives: list[str],
    model,
    cfg: MiningConfig,
    corpus: list[str] | None = None,
    cache_dir: str | None = None,
    progress: Callable[[str, float], None] | None = None,
    prompts: dict[str, str] | None = None,
) -> MiningResult:
    """Mine up to `cfg.num_negatives` hard negatives for each (query, positive) row.

    Args:
        queries, positives: the training pairs (same length; a query may repeat with several positives).
        model: the mining SentenceTransformer.
        cfg: the `mining:` block of the config.
        corpus: extra candidate documents besides the positives (e.g. every document of the dataset plus
            `corpus_path`).
        cache_dir: embedding cache; mining again with other thresholds reuses the embeddings.
        prompts: {"query", "document"} prompts put before queries and candidate documents ("" = none).
    """
    from datasets import Dataset
    from sentence_transformers.util import mine_hard_negatives

    exclusions = load_exclusions(cfg.exclude_path)
    # Ask for extra candidates so excluded negatives and near-duplicates of the positive can be replaced by the next.
    most_excluded = max(Counter(q for q, _ in exclusions).values(), default=0)
    n_ask = max(1, min(cfg.num_negatives + most_excluded + DUPLICATE_SLACK, cfg.range_max - cfg.range_min))

    extra = [t for t in dict.fromkeys(corpus or []) if t not in set(positives)]
    if progress:
        progress("encoding", 0.0)
    query_prompt, corpus_prompt = ((prompts or {}).get(k) or None for k in ("query", "document"))
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        mined = mine_hard_negatives(
            Dataset.from_dict({"query": queries, "positive": positives}),
            model,
            anchor_column_name="query",
            positive_column_name="positive",
            corpus=extra or None,
            num_negatives=n_ask,
            output_format="labeled-list",
            output_scores=True,
            use_faiss=_faiss_available(),
            use_multi_process=local_devices() or False,  # a single process on several GPUs encodes on all of them
            cache_folder=cache_dir,
            verbose=True,
            query_prompt=query_prompt,
            corpus_prompt=corpus_prompt,
            **_settings(cfg),
        )
    log = out.getvalue()
    if progress:
        progress("mined", 1.0)

    table, negatives, n_excluded, n_copies, gaps = _kept_rows(mined, queries, positives, exclusions, cfg)
    stats = _stats(table, queries, positives, negatives, log, cfg, n_excluded, len(extra))
    if n_copies:
        stats["skipped"]["near_duplicate"] = n_copies
    library_corpus = list(dict.fromkeys(extra + list(positives)))  # the order mine_hard_negatives encodes in
    embeddings = _cached_corpus_embeddings(cache_dir, model, library_corpus, corpus_prompt)
    return MiningResult(table, stats, negatives, embeddings, gaps)


def _kept_rows(mined, queries: list[str], positives: list[str], exclusions: set[tuple[str, str]], cfg: MiningConfig):
    """(one row per kept negative with its scores, the kept negatives per input row, negatives excluded, candidates
    skipped as near-copies of the positive, each row's gap to its hardest negative): the library's labeled-list
    output (positive = [positive, neg_1, ...], scores = [pos_score, neg_1_score, ...]) in input order, without
    excluded (query, negative) pairs, at most `cfg.num_negatives` per row."""
    found: dict[tuple[str, str], list[tuple[str, float, float]]] = {}
    for q, texts, scores in zip(mined["query"], mined["positive"], mined["scores"]):
        found.setdefault((q, texts[0]), [(n, scores[0], s) for n, s in zip(texts[1:], scores[1:])])
    rows, negatives, gaps, n_excluded, n_copies = [], [], [], 0, 0
    for q, p in zip(queries, positives):
        candidates = found.get((q, p), [])
        # A near-copy of the positive is no negative whatever its score (overlapping chunks, boilerplate answers).
        copies = {n for n, _, _ in candidates if near_duplicate(n, p)}
        kept = [(n, ps, ns) for n, ps, ns in candidates if (q, n) not in exclusions and n not in copies][
            : cfg.num_negatives
        ]
        n_copies += len(copies)
        n_excluded += sum((q, n) in exclusions for n, _, _ in candidates)
        negatives.append([n for n, _, _ in kept])
        gaps.append(kept[0][1] - kept[0][2] if kept else None)
        for rank, (n, ps, ns) in enumerate(kept):
            suspect = is_within_margin(ps, ns, cfg)
            rows.append((q, p, n, rank, ps, ns, ps - ns, suspect))
    return pd.DataFrame(rows, columns=MINED_COLUMNS), negatives, n_excluded, n_copies, gaps


def easiest_rows(gaps: list[float | None], share: float) -> set[int]:
    """The rows `mining.skip_easiest` leaves out: the `share` of mined rows whose hardest negative is furthest below
    the positive, where the loss and its gradient are already small. Rows without a mined negative are not judged."""
    judged = sorted((g, i) for i, g in enumerate(gaps) if g is not None)
    n = int(len(judged) * share)
    return {i for _, i in judged[len(judged) - n :]} if n else set()


def _summary(values: pd.Series) -> dict[str, float]:
    if values.empty:
        return {}
    d = values.describe(percentiles=[0.25, 0.5, 0.75])
    return {k: round(float(d[k]), 4) for k in ["count", "mean", "std", "min", "25%", "50%", "75%", "max"] if k in d}


def _stats(table, queries, positives, negatives, log, cfg, n_excluded, n_extra) -> dict[str, Any]:
    skipped = _skip_counts(log)
    short = sum(1 for n in negatives if len(n) < cfg.num_negatives)
    pos_scores = table.drop_duplicates(["query", "positive"])["positive_score"] if not table.empty else pd.Series([])
    return {
        "rows": len(queries),
        "distinct_queries": len(set(queries)),
        "corpus_size": len(set(positives)) + n_extra,
        "negatives": len(table),
        "num_negatives": cfg.num_negatives,
        "positive_scores": _summary(pos_scores),
        "negative_scores": _summary(table["negative_score"]) if not table.empty else {},
        "gap": _summary(table["gap"]) if not table.empty else {},
        "skipped": skipped,  # candidates dropped, by reason: absolute_margin / relative_margin / max_score / min_score
        "skipped_by_margin": skipped.get("absolute_margin", 0) + skipped.get("relative_margin", 0),
        "excluded": n_excluded,
        "rows_without_enough_negatives": short,
        "suspected_false_negatives": int(table["suspected_false_negative"].sum()) if not table.empty else 0,
    }


TRIPLET = ["query", "positive", "negative_1"]


def training_table(
    queries: list[str],
    positives: list[str],
    negatives: list[list[str]],
    n: int,
    pool: list[str],
    seed: int,
    given: list[str] | None = None,
    output_format: str = "n-tuple",
) -> pd.DataFrame:
    """(query, positive, negative_1..n) columns for MultipleNegativesRankingLoss, which needs the same number of
    negatives on every row: rows with fewer mined negatives are topped up with random documents from `pool`
    that are not a positive of that query (easy negatives; MNRL's in-batch negatives are of that kind anyway).
    `given` holds a triplet dataset's own negatives, which come first. `output_format="triplet"`: one (query,
    positive, negative) row per negative instead, as `mine_hard_negatives` writes them; the no-duplicates batch
    sampler keeps a query's rows in different batches."""
    rng = random.Random(seed)
    pos_of: dict[str, set[str]] = {}
    for q, p in zip(queries, positives):
        pos_of.setdefault(q, set()).add(p)
    width = n + (1 if given is not None else 0)
    cols: dict[str, list[str]] = {"query": list(queries), "positive": list(positives)}
    for i in range(width):
        cols[f"negative_{i + 1}"] = []
    for i, (q, negs) in enumerate(zip(queries, negatives)):
        row = ([given[i]] if given is not None else []) + list(negs)
        tries = 0
        while len(row) < width and pool and tries < 50:
            cand = rng.choice(pool)
            tries += 1
            if cand not in pos_of[q] and cand not in row:
                row.append(cand)
        while len(row) < width:  # tiny pools: repeat the last negative rather than drop the row
            row.append(row[-1] if row else positives[(i + 1) % len(positives)])
        for j in range(width):
            cols[f"negative_{j + 1}"].append(row[j])
    table = pd.DataFrame(cols)
    if output_format != "triplet" or width < 2:
        return table
    rows = [table[["query", "positive", f"negative_{j + 1}"]].set_axis(TRIPLET, axis=1) for j in range(width)]
    return pd.concat(rows, ignore_index=True)

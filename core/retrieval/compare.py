"""Two embedding models side by side: similarity, search with rank changes, gold ranks on the test split — the
logic behind the studio's Compare tab, usable without a UI. Getting a model out (zip, hub) is core/export/archive.py.

Any two models work (a hub id, the bundled MiniLM, a run's `model/` folder); "A" is usually the base model and
"B" the fine-tuned one. Ranks are over the whole corpus, 1-based; a positive `change` always means B is better.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from core.config.schema import EmbedConfig
from core.data.validate import positive_column
from core.evaluation.evaluators import shown_metrics
from core.models.choices import model_choices as all_model_choices
from core.models.load import BUNDLED_NAMES, ModelError, is_model_dir, model_prompts, resolve_model, shared_model
from core.retrieval.search import SearchIndex, get_index, query_scores, ranks_of, similarity
from core.training.prepare import resolve_dataset, split_data

K_LIST = (1, 5, 10)
LOCAL_ROOTS = {"outputs", "runs", "models", "checkpoints", "workspace"}  # folder names that mean "a path", not a hub id


class CompareError(ValueError):
    """Input a comparison cannot use; the message says what to do instead."""


def check_model(name: str | None, role: str = "model") -> str:
    """The local directory of `name`, or CompareError with a message a user can act on."""
    name = (name or "").strip()
    if not name:
        raise CompareError(f"No {role} given: train a model first or pick a model directory.")
    first = Path(name).parts[0] if Path(name).parts else ""
    path_like = (
        name.startswith((".", "/", "~"))
        or name.count("/") != 1  # `org/name-v1.5` is a hub id
        or first in LOCAL_ROOTS
        or Path(first).is_dir()
    )
    if path_like and name.lower() not in BUNDLED_NAMES and not Path(name).expanduser().is_dir():
        # Checked here so a missing output folder is not first looked up on the hub as 'outputs/embedding_model'.
        raise CompareError(f"No model at '{name}' ({role}): train a model first or pick a model directory.")
    try:
        return resolve_model(name)
    except ModelError as exc:
        raise CompareError(
            f"Model '{name}' ({role}) could not be used: train a model first or pick a model directory. Details: {exc}"
        ) from None


def split_lines(text: str | list[str]) -> list[str]:
    lines = text if isinstance(text, list) else str(text or "").splitlines()
    return [t.strip() for t in lines if t and t.strip()]


def compare_similarity(text_a: str, others: str | list[str], model_a: str, model_b: str) -> dict[str, list[float]]:
    """Cosine of `text_a` to each of `others` (a list, or text with one per line) under both models.

    Example: `compare_similarity("reset password", "forgot my login\\nprinter jam", base, tuned)["delta"]`.
    """
    if not (text_a or "").strip():
        raise CompareError("Enter the first text.")
    text_a = text_a[:MAX_SIMILARITY_CHARS]  # a model reads far less; a pasted book costs no more than this
    lines = [line[:MAX_SIMILARITY_CHARS] for line in split_lines(others)[:MAX_SIMILARITY_LINES]]
    if not lines:
        raise CompareError("Enter a second text (or several, one per line).")
    a = similarity(check_model(model_a, "model A"), text_a.strip(), lines)
    b = similarity(check_model(model_b, "model B"), text_a.strip(), lines)
    return {"texts": lines, "model_a": a, "model_b": b, "delta": [y - x for x, y in zip(a, b, strict=True)]}


MAX_SIMILARITY_CHARS = 50_000  # of one text: far past what any model reads (max_seq_length ≤ 8192 tokens)
MAX_SIMILARITY_LINES = 200  # texts B compared at once


def unread_notes(text_a: str, others: str | list[str], model_names: list[str]) -> list[str]:
    """Which texts of a similarity comparison the models read only in part: a model reads its first max_seq_length
    tokens and ignores the rest, which a reader of the scores should know. Only a prefix is tokenised (cheap)."""
    lines = split_lines(others)
    notes: list[str] = []
    if len(lines) > MAX_SIMILARITY_LINES:
        notes.append(f"Text B has {len(lines):,} lines: the first {MAX_SIMILARITY_LINES} were compared.")
        lines = lines[:MAX_SIMILARITY_LINES]
    models = [shared_model(check_model(name)) for name in dict.fromkeys(model_names) if name]
    limits = {int(m.max_seq_length or 0) for m in models if m.max_seq_length}
    if not models or not limits:
        return notes
    model, limit = models[0], min(limits)
    for label, text in [("Text A", text_a or ""), *((f"line {i + 1} of text B", t) for i, t in enumerate(lines))]:
        if len(text) <= limit:
            continue  # fewer characters than tokens read: whole
        cut = text[: limit * 12]
        tokens = len(model.tokenizer(cut, add_special_tokens=False)["input_ids"])
        if tokens > limit:
            longer = (
                "" if len(text) <= MAX_SIMILARITY_CHARS else f", of which the first {MAX_SIMILARITY_CHARS:,} are kept"
            )
            notes.append(
                f"{label} has {len(text):,} characters{longer}: the models read only its first {limit} tokens "
                "(max_seq_length), so the rest of it was not scored."
            )
        if len(notes) >= 5:
            break
    return notes


# ---- evaluation data: the same split and corpus as training (prepare.load_and_split), without a run folder ----


@dataclass
class EvalData:
    fmt: str
    train: pd.DataFrame
    test: pd.DataFrame
    corpus: list[str]
    path: str

    @property
    def pos_col(self) -> str:
        return positive_column(self.fmt)

    def split_of(self, query: str) -> str | None:
        if self.fmt == "scored":
            return None
        for name, df in (("test", self.test), ("train", self.train)):
            if query in set(df["query"]):
                return name
        return None

    def gold_for(self, query: str) -> set[str]:
        """Documents paired with `query` in the test split (what the IR evaluator counts as relevant)."""
        if self.fmt == "scored" or self.test.empty:
            return set()
        return set(self.test.loc[self.test["query"] == query, self.pos_col])


_eval_cache: dict[tuple, EvalData] = {}


def evaluation_data(cfg: EmbedConfig) -> EvalData:
    """Train/test split and evaluation corpus of `cfg`'s dataset, cached while the file is unchanged."""

    path = resolve_dataset(cfg)
    stamp = Path(path).stat().st_mtime if Path(path).exists() else 0.0
    key = (str(Path(path).resolve()), stamp, cfg.format, cfg.sample_size, cfg.test_size, cfg.seed, cfg.corpus_path)
    if key not in _eval_cache:
        prep = split_data(cfg)
        corpus = prep.corpus
        if prep.fmt == "scored":  # no documents as such: search over every text of the file
            texts = (
                list(prep.train["doc1"]) + list(prep.train["doc2"]) + list(prep.test["doc1"]) + list(prep.test["doc2"])
            )
            corpus = list(dict.fromkeys(texts + corpus))
        _eval_cache.clear()  # one dataset at a time is what the studio shows
        _eval_cache[key] = EvalData(prep.fmt, prep.train, prep.test, corpus, str(path))
    return _eval_cache[key]


# ---- search and ranks ----


def _scores(index: SearchIndex, queries: list[str]) -> np.ndarray:
    q = index.encode_queries(queries)
    return q @ index.embeddings.T


def _ranks(scores: np.ndarray) -> np.ndarray:
    """1-based rank of every document per query row (ties share the better rank, as SearchIndex.rank_of)."""
    order = np.sort(scores, axis=-1)[..., ::-1]
    return np.stack([np.searchsorted(-order[i], -scores[i], side="left") + 1 for i in range(scores.shape[0])])


def _arrow(other_rank: int, rank: int) -> str:
    d = other_rank - rank
    return f"▲{d}" if d > 0 else f"▼{-d}" if d < 0 else "="


def search_both(
    query: str,
    k: int,
    model_a: str,
    model_b: str,
    corpus: list[str],
    gold: set[str] | None = None,
    cache_dir: str | None = None,
    prompts: dict[str, str | None] | None = None,
) -> dict[str, Any]:
    """Top-k of `query` in `corpus` under each model. Each hit: rank, score, text, gold, other_rank (its rank under
    the other model) and change ("▲3": this model ranks it 3 places higher than the other one)."""
    if not (query or "").strip():
        raise CompareError("Enter a query.")
    if not corpus:
        raise CompareError("The corpus is empty: load a dataset or upload a corpus file.")
    k = max(1, min(int(k or 10), len(corpus)))
    paths = {"model_a": check_model(model_a, "model A"), "model_b": check_model(model_b, "model B")}
    indexes = [get_index(path, corpus, cache_dir, prompts) for path in paths.values()]
    scores = dict(zip(paths, query_scores(indexes, query.strip())))
    rank = lambda side, ids: ranks_of(scores[side], ids)  # noqa: E731  only the shown documents, not all 10k
    gold = gold or set()
    gold_ids = np.array([i for i, t in enumerate(corpus) if t in gold] if gold else [], dtype=np.int64)
    out: dict[str, Any] = {}
    for side, other in (("model_a", "model_b"), ("model_b", "model_a")):
        top = np.argsort(-scores[side], kind="stable")[:k]
        own, theirs = rank(side, top), rank(other, top)
        out[side] = [
            {
                "rank": int(r),
                "score": round(float(scores[side][i]), 4),
                "text": corpus[i],
                "gold": corpus[i] in gold,
                "other_rank": int(o),
                "change": _arrow(int(o), int(r)),
            }
            for i, r, o in zip(top, own, theirs)
        ]
    out["gold_rank"] = {side: int(rank(side, gold_ids).min()) if len(gold_ids) else None for side in paths}
    return out


def gold_rank_changes(
    model_a: str,
    model_b: str,
    test_df: pd.DataFrame,
    fmt: str,
    corpus: list[str],
    cache_dir: str | None = None,
    prompts: dict[str, str | None] | None = None,
) -> pd.DataFrame:
    """Per test query: the best rank of a gold document under each model and `change` = rank_a - rank_b
    (> 0: B ranks the gold higher). Scored pairs instead: |cosine - label| per model, change = error_a - error_b.

    Example: `gold_rank_changes(base, tuned, data.test, data.fmt, data.corpus).nlargest(5, "change")`.
    """
    pa, pb = check_model(model_a, "model A"), check_model(model_b, "model B")
    if test_df.empty:
        raise CompareError("The test split is empty: set test_size (e.g. 0.2) to hold out queries for evaluation.")
    if fmt == "scored":
        df = test_df[["doc1", "doc2"]].reset_index(drop=True).assign(label=test_df["similarity"].astype(float).values)
        for side, path in (("a", pa), ("b", pb)):
            model = shared_model(path)
            prompt = model_prompts(model, prompts)["query"]  # symmetric pairs: both sides as queries, as trained
            e1, e2 = (
                model.encode(list(df[c]), prompt=prompt, normalize_embeddings=True, convert_to_numpy=True)
                for c in ("doc1", "doc2")
            )
            df[f"score_{side}"] = np.round((e1 * e2).sum(axis=1).astype(float), 4)
            df[f"error_{side}"] = (df[f"score_{side}"] - df["label"]).abs()
        df["change"] = df["error_a"] - df["error_b"]
        return df
    pos_col = positive_column(fmt)
    corpus = list(dict.fromkeys(list(corpus) + list(test_df[pos_col])))  # a test positive is always in the corpus
    position = {t: i for i, t in enumerate(corpus)}
    gold: dict[str, list[int]] = {}
    for q, d in zip(test_df["query"], test_df[pos_col], strict=True):
        gold.setdefault(q, []).append(position[d])
    queries = list(gold)
    result: dict[str, Any] = {"query": queries}
    for side, path in (("a", pa), ("b", pb)):
        s = _scores(get_index(path, corpus, cache_dir, prompts), queries)
        r = _ranks(s)
        best = [min(gold[q], key=lambda i, row=row: r[row][i]) for row, q in enumerate(queries)]
        result[f"rank_{side}"] = [int(r[row][i]) for row, i in enumerate(best)]
        result[f"score_{side}"] = [round(float(s[row][i]), 4) for row, i in enumerate(best)]
        result[f"gold_{side}"] = [corpus[i] for i in best]
        result[f"all_ranks_{side}"] = [sorted(int(r[row][i]) for i in gold[q]) for row, q in enumerate(queries)]
    df = pd.DataFrame(result)
    df["change"] = df["rank_a"] - df["rank_b"]
    df.attrs["corpus_size"] = len(corpus)
    return df


def improved_and_worsened(changes: pd.DataFrame, n: int = 10) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The `n` rows B improved most (largest change first) and made worse most (most negative first)."""
    improved = changes[changes["change"] > 0].sort_values("change", ascending=False, kind="stable").head(n)
    worsened = changes[changes["change"] < 0].sort_values("change", ascending=True, kind="stable").head(n)
    return improved.reset_index(drop=True), worsened.reset_index(drop=True)


def ir_metrics(all_ranks: list[list[int]]) -> dict[str, float]:
    """The IR evaluator's metrics (binary relevance) from the ranks of each query's relevant documents."""
    if not all_ranks:
        return {}
    out: dict[str, list[float]] = {f"accuracy@{k}": [] for k in K_LIST}
    out.update({"map@100": [], "mrr@10": [], "ndcg@10": [], "recall@10": []})
    for ranks in all_ranks:
        ranks = sorted(ranks)
        for k in K_LIST:
            out[f"accuracy@{k}"].append(float(ranks[0] <= k))
        out["mrr@10"].append(1.0 / ranks[0] if ranks[0] <= 10 else 0.0)
        out["recall@10"].append(sum(r <= 10 for r in ranks) / len(ranks))
        dcg = sum(1.0 / math.log2(r + 1) for r in ranks if r <= 10)
        idcg = sum(1.0 / math.log2(i + 2) for i in range(min(len(ranks), 10)))
        out["ndcg@10"].append(dcg / idcg)
        hits = [r for r in ranks if r <= 100]
        out["map@100"].append(sum((j + 1) / r for j, r in enumerate(hits)) / min(len(ranks), 100))
    return {k: float(np.mean(v)) for k, v in out.items()}


def metrics_frame(changes: pd.DataFrame, fmt: str, metrics: list[str] | None = None) -> pd.DataFrame:
    """metric | model A | model B | change, computed from `gold_rank_changes` (no second encoding pass); the rows
    are `metrics` (the config's evaluation.metrics) where the format measures them."""
    if fmt == "scored":
        from scipy.stats import spearmanr

        a = {"spearman": float(spearmanr(changes["score_a"], changes["label"])[0])}
        b = {"spearman": float(spearmanr(changes["score_b"], changes["label"])[0])}
    else:
        a, b = ir_metrics(list(changes["all_ranks_a"])), ir_metrics(list(changes["all_ranks_b"]))
    rows = [
        {"metric": m, "model A": round(a[m], 4), "model B": round(b[m], 4), "change": round(b[m] - a[m], 4)}
        for m in shown_metrics(metrics, a)
    ]
    return pd.DataFrame(rows, columns=["metric", "model A", "model B", "change"])


# ---- getting a model out ----


def run_model_dir(run_dir: str | Path | None) -> str | None:
    """A run's own fine-tuned model (`<run>/model`): output_dir is overwritten by the next training."""
    if not run_dir:
        return None
    path = Path(run_dir) / "model"
    return str(path) if is_model_dir(path) else None


def model_choices(runs_dir: str | Path, base_model: str, output_dir: str | None = None) -> list[str]:
    """The base model, output_dir (when it exists), then each run's model, newest first (`core.models.choices.model_choices`
    without the hub models: what Export can zip)."""
    tuned = [c["value"] for c in all_model_choices(runs_dir, base_model, output_dir) if c["source"] == "fine-tuned"]
    return list(dict.fromkeys([base_model, *tuned]))


def model_choice_pairs(
    runs_dir: str | Path, base_model: str, output_dir: str | None = None, keep: list[str] | None = None
) -> list[tuple[str, str]]:
    """(label, value) pairs for a dropdown (label: source, "needs download", dimension, size), plus `keep` values
    (the current picks) that are not listed."""
    pairs = [(c["label"], c["value"]) for c in all_model_choices(runs_dir, base_model, output_dir)]
    listed = {v for _, v in pairs}
    return pairs + [(v, v) for v in dict.fromkeys(keep or []) if v and v not in listed]


__all__ = [
    "CompareError",
    "EvalData",
    "check_model",
    "compare_similarity",
    "search_both",
    "gold_rank_changes",
    "improved_and_worsened",
    "ir_metrics",
    "metrics_frame",
    "evaluation_data",
    "model_choices",
    "model_choice_pairs",
    "run_model_dir",
]

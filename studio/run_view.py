"""A run drawn from its events for the Train tab: one log line per event, estimate against actual per phase, and the
one-line "which data, which models" summary the Train, Negatives and Compare tabs show. Pure functions, no Gradio."""

from __future__ import annotations

import time
from functools import lru_cache
from pathlib import Path
from typing import Any

from core.config.schema import load_config
from core.evaluation.advice import before_start
from core.runs.progress import LABELS, PHASES, format_eta, phase_times
from studio.datasets import dataset_entry, validate
from studio.files import hide_paths

SHOWN_METRICS = ("ndcg@10", "mrr@10", "accuracy@1", "spearman", "triplet_accuracy")


def _clock(event: dict[str, Any]) -> str:
    return time.strftime("%H:%M:%S", time.localtime(event.get("time", 0)))


def event_line(e: dict[str, Any]) -> str | None:
    """One readable line for an event, or None for events that only feed the bars (phase progress, mining ticks)."""
    t = e.get("type")
    if t == "run_started":
        d = e.get("data") or {}
        return (
            f"run started on {e.get('device')}: {Path(str(d.get('path'))).name} ({d.get('format')}, "
            f"{d.get('train_rows')} train / {d.get('test_rows')} test rows, {d.get('corpus_size')} documents)"
        )
    if t == "estimate":
        p = e.get("phases") or {}
        return (
            "estimate: "
            + format_eta(e.get("total_s"))
            + " ("
            + ", ".join(f"{LABELS.get(k, k)} {format_eta(v)}" for k, v in p.items() if v)
            + ")"
        )
    if t == "phase":
        if e.get("done") == 0:
            return f"{LABELS.get(e['phase'], e['phase'])} …"
        if e.get("elapsed_s") is not None:
            return f"{LABELS.get(e['phase'], e['phase'])} done in {format_eta(e['elapsed_s'])}"
        return None
    if t == "mining_done":
        s = e.get("stats") or {}
        return (
            f"mined {s.get('negatives')} hard negatives for {s.get('rows')} rows "
            f"({s.get('suspected_false_negatives')} suspected false negatives)"
        )
    if t == "precision":
        if e.get("measured"):
            return (
                f"training in {e.get('precision')}: measured on this run's batches, {e.get('bf16_us_per_token')} µs "
                f"per token in bf16, {e.get('fp32_us_per_token')} in fp32"
            )
        return f"training in {e.get('precision')} ({e.get('reason')})"
    if t == "merged":
        return e.get("message")
    if t == "train_step":
        return (
            f"step {e['step']}/{e.get('max_steps')} · epoch {e.get('epoch', 0):.2f} · loss {e.get('loss') or 0:.4f}"
            f" · ETA {format_eta(e.get('eta_s'))}"
        )
    if t == "eval":
        label = "baseline" if e.get("baseline") else "final" if e.get("final") else f"step {e.get('step')}"
        shown = ", ".join(
            f"{k} {v:.4f}" for k, v in (e.get("metrics") or {}).items() if k in SHOWN_METRICS and v is not None
        )
        return f"evaluation ({label}): {shown}"
    if t == "checkpoint":
        return f"checkpoint saved at step {e.get('step')}"
    if t == "warning":
        return f"warning: {e.get('message')}"
    if t in ("finished", "stopped"):
        return f"{t}: model saved to {e.get('model_dir')}" + (f" — {e['message']}" if e.get("message") else "")
    if t == "failed":
        return "failed: " + str(e.get("message") or "").strip()
    return None


def log_lines(events: list[dict[str, Any]], limit: int = 30) -> str:
    """The run's log tail: a clock and one line per event, nothing else (no progress bars, no tables)."""
    lines = []
    for e in events:
        line = event_line(e)
        if line:
            lines.append(f"{_clock(e)}  {line}")
    return "\n".join(lines[-limit:])


def estimate_vs_actual(events: list[dict[str, Any]]) -> str:
    """Markdown table: the estimate the run started with next to what each phase has taken so far."""
    est = next((e for e in events if e.get("type") == "estimate"), None)
    actual = phase_times(events)
    if est is None and not actual:
        return ""
    guess = (est or {}).get("phases", {})
    rows = ["| phase | estimate | actual |", "|---|---:|---:|"]
    for name in PHASES:
        if name in guess or name in actual:
            rows.append(
                f"| {LABELS.get(name, name)} | {format_eta(guess.get(name))} | "
                f"{format_eta(actual.get(name)) if name in actual else '–'} |"
            )
    rows.append(
        f"| **total** | **{format_eta((est or {}).get('total_s'))}** | **{format_eta(sum(actual.values()))}** |"
    )
    note = "" if est else "\n\n*No estimate for this run: press **Estimate time** before Start to measure one.*"
    return "\n".join(rows) + note


def data_line(
    dataset: dict[str, Any] | None, config: dict[str, Any] | None, model: str | None = None, run: str | None = None
) -> str:
    """`Data: x.csv (pairs, 120 rows) · corpus: none · model: …` — what a tab is working on."""
    config = config or {}
    parts = []
    if dataset:
        parts.append(
            f"**Data:** `{Path(str(dataset.get('path'))).name}` ({dataset.get('format')}, {dataset.get('rows')} rows)"
        )
    else:
        parts.append("**Data:** none selected")
    corpus = config.get("corpus_path")
    parts.append(f"**corpus:** `{Path(corpus).name}`" if corpus else "**corpus:** the dataset's documents")
    parts.append(f"**model:** `{model or config.get('model_name')}`")
    if run:
        parts.append(f"**run:** `{Path(run).name}`")
    return hide_paths(" · ".join(parts))  # a model folder reads relative to the visitor's folder or the project


def train_info(dataset: dict[str, Any] | None, config: dict[str, Any] | None, run: str | None) -> str:
    """The Train tab's header: what a Start would train on, and what to fix first when the data is too small."""

    return data_line(dataset, config, run=run) + "".join(f"\n\n⚠️ {w}" for w in before_start(dataset, config))


def run_dataset(run_dir: str | Path | None) -> tuple[dict[str, Any] | None, str | None]:
    """(the dataset as ctx.dataset holds it, corpus_path) a run trained on, from its config.yaml; the dataset is None
    when the run has no readable config or its file is gone or no longer valid."""
    import yaml

    try:
        cfg = yaml.safe_load(Path(run_dir, "config.yaml").read_text(encoding="utf-8")) or {}
    except (OSError, TypeError, yaml.YAMLError):
        return None, None
    path, corpus = cfg.get("dataset_path"), cfg.get("corpus_path")
    if not path or not Path(path).is_file():
        return None, corpus
    return _validated(
        str(path),
        Path(path).stat().st_mtime,
        cfg.get("model_name") or "",
        cfg.get("max_seq_length"),
        cfg.get("format") or "auto",
    ), corpus


@lru_cache(maxsize=8)
def _validated(path: str, mtime: float, model: str, max_len: int | None, fmt: str) -> dict[str, Any] | None:

    report, _ = validate(path, {"model_name": model, "max_seq_length": max_len}, fmt)
    return dataset_entry(report, Path(path)) if report.ok else None


def restore_run_data(
    run_dir: str | None, dataset: dict[str, Any] | None, config: dict[str, Any]
) -> tuple[dict[str, Any] | None, dict[str, Any]]:
    """The session's (dataset, config) with the run's dataset and corpus put back, so that what Train, Negatives and
    Compare use is what the shown run trained on. Unchanged when the run's data cannot be read."""
    if not run_dir:
        return dataset, config
    entry, corpus = run_dataset(run_dir)
    if entry is None:
        return dataset, config
    same = dataset and Path(dataset["path"]).resolve() == Path(entry["path"]).resolve()
    return (dataset if same else entry), _run_config(run_dir, config, entry["path"], corpus)


def _run_config(run_dir: str, config: dict[str, Any], dataset_path: str, corpus: str | None) -> dict[str, Any]:
    """The run's own config (what a Start after a reload would repeat) in this studio's runs folder; the session's
    config with the run's data when the run's config no longer loads."""

    try:
        loaded = load_config(Path(run_dir, "config.yaml")).to_dict()
        return dict(loaded, runs_dir=config.get("runs_dir") or loaded["runs_dir"])
    except Exception:  # an old or hand-edited config: keep the session's, with the run's data
        return dict(config, dataset_path=dataset_path, corpus_path=corpus)

"""What the Train tab does with runs, apart from drawing them: read a run's events, log and status (incrementally,
once a second while it is live), check a Start's config for a visitor and queue it, find the run to stop or to show.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any

import yaml

from core.config.schema import ConfigError, EmbedConfig, apply_preset, build_config, nest, safe_yaml
from core.evaluation.evaluators import metrics_table
from core.models.devices import max_processes
from core.models.load import check_output_dir
from core.runs.events import read_events
from core.runs.folders import CONFIG_FILE, EVENTS_FILE, LOG_FILE, METRICS_FILE, list_runs, read_json
from core.runs.queue import live_runs, queue, run_status, start_training, stop_training
from core.training.estimate import estimate, estimate_markdown
from studio.context import StudioContext, Visitor

LOG_LINES = 30
_CACHE_RUNS = 16  # runs whose events stay in memory; a run's events are small, the bound is for long-lived servers

_cache: OrderedDict[str, tuple[int, list[dict[str, Any]]]] = OrderedDict()
_cache_lock = threading.Lock()


def run_events(run_dir: str | Path) -> list[dict[str, Any]]:
    """All events of a run, read incrementally: every poll reads only the lines appended since the last one."""
    key = str(run_dir)
    with _cache_lock:
        offset, events = _cache.pop(key, (0, []))
        path = Path(run_dir) / EVENTS_FILE
        if path.exists() and path.stat().st_size < offset:  # rewritten (a resumed run): start over
            offset, events = 0, []
        new, offset = read_events(path, offset)
        events = events + new
        _cache[key] = (offset, events)
        while len(_cache) > _CACHE_RUNS:
            _cache.popitem(last=False)
        return events


def log_tail(run_dir: str | Path, lines: int = LOG_LINES) -> str:
    """Last lines of the run's console output (process.log: progress, warnings, tracebacks), else of train.log.
    Progress bars rewrite their line with \r: only the last state of such a line is kept."""
    run_dir = Path(run_dir)
    for name in ("process.log", LOG_FILE):
        path = run_dir / name
        if path.is_file() and path.stat().st_size:
            with path.open("rb") as f:
                f.seek(max(0, path.stat().st_size - 64 * 1024))  # the tail only: logs of long runs get big
                text = f.read().decode("utf-8", errors="replace")
            kept = [line.split("\r")[-1].rstrip() for line in text.split("\n")]
            return "\n".join([line for line in kept if line.strip()][-lines:])
    return ""


def status_of(run_dir: str | Path | None) -> dict[str, Any]:
    """`core.runs.queue.run_status` plus the before/after metrics once metrics.json is written."""
    status = run_status(run_dir)
    if run_dir and status["state"] != "idle":
        metrics = read_json(Path(run_dir) / METRICS_FILE, {}) or {}
        if metrics:
            status.update(
                before=metrics.get("before", {}), after=metrics.get("after", {}), primary=metrics.get("primary")
            )
        status["warnings"] = [e["message"] for e in run_events(run_dir) if e["type"] == "warning"]
    return status


def run_metrics(run_dir: str | Path | None) -> list[str] | None:
    """The run's evaluation.metrics (from its resolved config.yaml): what its tables show."""
    try:
        cfg = yaml.safe_load((Path(run_dir) / CONFIG_FILE).read_text(encoding="utf-8")) if run_dir else None
    except (OSError, yaml.YAMLError):
        return None
    return ((cfg or {}).get("evaluation") or {}).get("metrics")


def final_table(status: dict[str, Any]) -> str:
    warnings = "".join(f"\n\n⚠️ {w}" for w in status.get("warnings") or [])
    if status.get("after") or status.get("before"):
        return (
            f"### Before / after ({status.get('primary') or 'all metrics'} is the primary metric)\n\n"
            + metrics_table(status.get("before", {}), status.get("after", {}), run_metrics(status.get("run_dir")))
            + warnings
        )
    if status.get("state") == "failed" and status.get("message"):
        return f"### Failed\n\n```\n{status['message']}\n```"
    return ""


def default_run(v: Visitor, current: str | None = None) -> str | None:
    """The run a fresh page shows: this visitor's live (or queued) training, else the session's run, else their
    newest run on disk. Locally the visitor is the one user and sees every run, CLI runs included."""
    live = live_runs(None if not v.public else v.root)
    if live:
        return str(live[0])
    if current and v.owns(current) and Path(current).is_dir():
        return current
    runs = [r for r in list_runs(v.runs_dir) if r.kind == "train"]
    return runs[0].path if runs else None


def overrides_mapping(overrides: Any) -> dict[str, Any]:
    """API overrides -> a nested dict: a dict (nested or with dotted keys) or a YAML/JSON mapping as text."""
    if overrides in (None, "", {}):
        return {}
    if isinstance(overrides, str):
        overrides = safe_yaml(overrides, "start_training")
    if not isinstance(overrides, dict):
        raise ConfigError(["overrides must be a mapping of key: value"], "start_training")
    return nest(overrides)


def process_choices() -> list[int]:
    """Data-parallel processes this server offers: 1 to the number of GPUs; on CPUs 1, or 2 with
    STUDIO_ALLOW_CPU_DDP=1 (to try it out: two CPU processes are not faster than one)."""
    return list(range(1, max_processes(allow_cpu=os.environ.get("STUDIO_ALLOW_CPU_DDP") == "1") + 1))


def launch(
    ctx: StudioContext, v: Visitor, config: dict[str, Any], dataset: dict | None, overrides: Any = None, nproc: int = 1
) -> tuple[Path, dict[str, Any]]:
    """Check the run's config for this visitor and queue it with `nproc` processes (an "nproc" key in the
    overrides wins). Raises ConfigError (PathRefused included) or ValueError; a running training is never touched."""
    cfg, nproc = run_config(v, config, dataset, overrides, nproc)
    check_output_dir(cfg.output_dir)
    for key in ("dataset_path", "corpus_path"):  # refused now, not after a turn in the queue
        if getattr(cfg, key) and not Path(getattr(cfg, key)).exists():
            raise ValueError(f"{key}: {Path(getattr(cfg, key)).name} not found")
    v.check_disk()
    limit = ctx.limits.train_minutes * 60 if v.public else None
    with _START_LOCK:  # the checks and the queueing as one step: two quick Starts must not both pass
        if v.public:
            fair_share(ctx, v)
        return start_training(cfg, time_limit_s=limit, nproc=nproc)


_START_LOCK = threading.Lock()


def fair_share(ctx: StudioContext, v: Visitor) -> None:
    """Public mode: one running or waiting training per visitor, and a bounded queue, so no one visitor (or script
    opening sessions) holds the machine for hours. Raises ValueError with what to do."""
    mine = live_runs(v.root)
    if mine:
        state = run_status(mine[0])["state"] or "running"
        raise ValueError(
            f"Your training `{mine[0].name}` is still {state}: on this server each visitor has one training at a "
            "time. Stop it or wait for it to finish."
        )
    waiting = len(queue().waiting)
    if waiting >= ctx.limits.max_queued:
        raise ValueError(
            f"The training queue is full ({waiting} waiting, the server's limit is {ctx.limits.max_queued}): "
            "try again when it has shortened."
        )


def run_config(
    v: Visitor, config: dict[str, Any], dataset: dict | None, overrides: Any = None, nproc: int = 1
) -> tuple[EmbedConfig, int]:
    """(the config a Start would run, its processes): the session's config + its dataset + overrides, checked for
    this visitor (confined paths in public mode). Raises ConfigError."""
    data = dict(config)
    if dataset:
        data["dataset_path"] = dataset["path"]
    extra = overrides_mapping(overrides)
    nproc = extra.pop("nproc", nproc) or 1
    if str(nproc) not in {str(n) for n in process_choices()}:
        raise ConfigError([f"nproc: {nproc} processes asked, this server offers {process_choices()}"], "start_training")
    preset = extra.pop("preset", None)
    if preset:
        data = apply_preset(data, preset)
    return v.config(build_config(data, extra, source="start_training")), int(nproc)


def started_message(run_dir: Path, queued: dict[str, Any], nproc: int = 1) -> str:
    procs = f" with {nproc} processes" if nproc > 1 else ""
    if queued.get("state") == "queued":
        return (
            f"Queued `{run_dir.name}`{procs} at position {queued['position']}: it starts by itself when the "
            "trainings ahead of it finish (Stop cancels it)."
        )
    return f"Started `{run_dir.name}`{procs}."


def estimate_text(v: Visitor, config: dict[str, Any], dataset: dict | None) -> tuple[str, dict[str, Any]]:
    """(markdown, estimate) for the Estimate button; the probe runs here once per model, machine and batch shape."""

    est = estimate_with(v, config, dataset, None)
    return "#### Time estimate on this machine\n\n" + estimate_markdown(est), est


def estimate_with(v: Visitor, config: dict[str, Any], dataset: dict | None, overrides: Any) -> dict:
    """The time estimate of the run a Start (with `overrides`) would queue."""

    return estimate(run_config(v, config, dataset, overrides)[0])


def stop_target(v: Visitor, run: str | None) -> str | None:
    """The visitor's live run to stop: the shown run when it is live, else their running or queued training.
    Locally that includes a run started from the CLI. A run that has written its terminal event is not live."""
    live = [str(p) for p in live_runs(None if not v.public else v.root)]
    for candidate in (run, *live):
        if candidate and v.owns(candidate) and run_status(candidate)["state"] in ("running", "queued"):
            return candidate
    return None


def stop_message(target: str | None) -> str:
    if target is None:
        return "No training of yours is running or queued."
    if run_status(target)["state"] == "queued":
        stop_training(target)
        return f"Cancelled `{Path(target).name}`: it was still waiting in the queue."
    stop_training(target)
    return f"Stop requested for `{Path(target).name}`: it stops after the current step and keeps the best model."

"""Train tab: Start/Stop, progress, streaming loss and metric curves, a log tail and the before/after table.

Training runs in a subprocess (`core.jobs`), so this tab only starts, stops and reads `runs/<id>/events.jsonl`.
A `gr.Timer` polls once a second while the shown run is live and switches itself off when it ends; a page reload
re-attaches through `demo.load` (see `attach`), with the run's dataset. Also registers the `start_training`,
`training_status`, `stop_training` and `estimate_training` API endpoints.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any

import gradio as gr
import yaml

from core.config import ConfigError, EmbedConfig, apply_preset, build_config, nest, safe_yaml
from core.distributed import max_processes
from core.evaluation import metrics_table
from core.events import read_events
from core.jobs import live_runs, run_status, start_training, stop_training
from core.models import check_output_dir
from core.runs import CONFIG_FILE, EVENTS_FILE, LOG_FILE, METRICS_FILE, list_runs, read_json
from studio.context import StudioContext, Visitor
from studio.plots import loss_figure, metrics_figure, progress_html
from studio.run_view import estimate_vs_actual, log_lines, restore_run_data, train_info

POLL_S = 1.0
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
    """`core.jobs.run_status` plus the before/after metrics once metrics.json is written."""
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


def parse_overrides(overrides: Any) -> dict[str, Any]:
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
    v.check_disk()
    limit = ctx.limits.train_minutes * 60 if v.public else None
    return start_training(cfg, time_limit_s=limit, nproc=nproc)


def run_config(
    v: Visitor, config: dict[str, Any], dataset: dict | None, overrides: Any = None, nproc: int = 1
) -> tuple[EmbedConfig, int]:
    """(the config a Start would run, its processes): the session's config + its dataset + overrides, checked for
    this visitor (confined paths in public mode). Raises ConfigError."""
    data = dict(config)
    if dataset:
        data["dataset_path"] = dataset["path"]
    extra = parse_overrides(overrides)
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
    from core.estimate import estimate_markdown

    est = _estimate_with(v, config, dataset, None)
    return "#### Time estimate on this machine\n\n" + estimate_markdown(est), est


def create_train_tab(ctx: StudioContext) -> dict[str, Any]:
    """The Train tab. Returns its components; `attach` wires the page-load re-attach."""
    info = gr.Markdown(train_info(ctx.dataset.value, ctx.config.value, None))
    with gr.Row():
        start = gr.Button("Start training", variant="primary", scale=1)
        stop = gr.Button("Stop", variant="stop", scale=1)
        estimate_btn = gr.Button("Estimate time", scale=1)
        choices = process_choices()
        nproc = gr.Dropdown(
            choices,
            value=1,
            label="Processes",
            interactive=len(choices) > 1,
            scale=1,
            info="data-parallel, one per GPU; global batch = batch_size x processes",
        )
        message = gr.Markdown(scale=4)
    estimate_md = gr.Markdown()
    progress = gr.HTML(progress_html({"state": "idle"}))
    timing = gr.Markdown()
    with gr.Row():
        loss_plot = gr.Plot(loss_figure([]), label="Loss")
        metrics_plot = gr.Plot(metrics_figure([]), label="Metrics")
    table = gr.Markdown()
    log = gr.Textbox(label=f"Log (last {LOG_LINES} lines)", lines=10, max_lines=20, interactive=False, autoscroll=True)
    timer = gr.Timer(POLL_S, active=False)
    view = [progress, loss_plot, metrics_plot, table, log, timer, ctx.run_ended, timing]
    drawn = gr.State(None)  # [run folder, events plotted]: a tick rebuilds the figures only when events arrived

    def redraw(run_dir: str | None, plotted: list | None = None) -> dict:
        if not run_dir:
            idle = (progress_html({"state": "idle"}), loss_figure([]), metrics_figure([]), "", "")
            return dict(zip([*view, drawn], (*idle, gr.Timer(active=False), None, "", None), strict=True))
        status = status_of(run_dir)
        events = run_events(run_dir)
        live = status["state"] in ("running", "queued")  # a queued run is polled until it has run
        mark = [run_dir, len(events)]
        out = {
            progress: progress_html(status),
            table: final_table(status),
            log: log_lines(events, LOG_LINES) or log_tail(run_dir),
            timer: gr.Timer(active=live),
            ctx.run_ended: None if live else run_dir,
            timing: estimate_vs_actual(events),
            drawn: mark,
        }
        if plotted is None or list(plotted) != mark:  # new events: the figures are rebuilt, else left as they are
            out |= {loss_plot: loss_figure(events), metrics_plot: metrics_figure(events)}
        return out

    def on_estimate(config: dict[str, Any], dataset: dict | None, request: gr.Request) -> str:
        try:
            with ctx.heavy(request):  # the probe trains a few steps: one at a time per visitor
                return estimate_text(ctx.visitor(request), config, dataset)[0]
        except Exception as exc:  # a config or data problem: the same words Start would use
            return f"⚠️ No estimate: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"

    def on_start(
        config: dict[str, Any], dataset: dict | None, run: str | None, n: int, request: gr.Request
    ) -> tuple[str | None, str]:
        try:
            run_dir, queued = launch(ctx, ctx.visitor(request), config, dataset, nproc=int(n or 1))
        except (ConfigError, ValueError) as exc:
            gr.Warning("Not started: see below")
            return run, f"⚠️ Not started:\n```\n{exc}\n```"
        return str(run_dir), started_message(run_dir, queued, int(n or 1))

    def on_stop(run: str | None, request: gr.Request) -> str:
        return stop_message(_stop_target(ctx.visitor(request), run))

    estimate_btn.click(on_estimate, [ctx.config, ctx.dataset], [estimate_md], api_visibility="private")
    gr.on(
        [ctx.dataset.change, ctx.config.change, ctx.run.change],
        train_info,
        [ctx.dataset, ctx.config, ctx.run],
        [info],
        api_visibility="private",
        show_progress="hidden",
    )
    start.click(on_start, [ctx.config, ctx.dataset, ctx.run, nproc], [ctx.run, message], api_visibility="private")
    stop.click(on_stop, [ctx.run], [message], concurrency_limit=None, api_visibility="private")
    ctx.run.change(redraw, [ctx.run], [*view, drawn], api_visibility="private", show_progress="hidden")
    timer.tick(
        redraw,
        [ctx.run, drawn],
        [*view, drawn],
        concurrency_limit=None,
        api_visibility="private",
        show_progress="hidden",
    )

    # ---- API for scripts (hidden components)
    with gr.Column(visible=False):
        api_in = gr.JSON()
        api_out = gr.JSON()
        api_start, api_status, api_stop, api_estimate = gr.Button(), gr.Button(), gr.Button(), gr.Button()

    def start_training_api(
        config_overrides: Any, config: dict[str, Any], dataset: dict | None, run: str | None, request: gr.Request
    ) -> tuple[dict[str, Any], str | None]:
        """API `/start_training`. Input: `config_overrides`, a dict (nested, or dotted keys such as
        {"mining.num_negatives": 1}) or a YAML/JSON string, applied over this session's config and dataset (a
        "preset" key applies a preset first, an "nproc" key sets the number of data-parallel processes). Output:
        {"run_id", "run_dir", "state": "running"}; when other trainings hold every slot, {"run_id", "run_dir",
        "state": "queued", "position": N, "ahead": N-1, "estimated_start_s"} (it starts by itself in its turn); or
        {"error": message, "errors": [...]} when the config is refused."""
        try:
            run_dir, queued = launch(ctx, ctx.visitor(request), config, dataset, config_overrides)
        except ConfigError as exc:
            return {"error": str(exc), "errors": exc.errors, "busy": False}, run
        except ValueError as exc:
            return {"error": str(exc), "errors": [str(exc)], "busy": False}, run
        out = {"run_id": run_dir.name, "run_dir": str(run_dir), "state": queued.get("state") or "running"}
        return out | {k: queued[k] for k in ("position", "ahead", "estimated_start_s") if k in queued}, str(run_dir)

    def training_status_api(run: str | None, request: gr.Request) -> dict[str, Any]:
        """API `/training_status`. No input. Output: the status of this visitor's running (or queued) training,
        else of this session's last run, else of their newest run: {state: idle|queued|running|finished|stopped|
        failed|interrupted, phase, run_id, run_dir, step, max_steps, epoch, loss, eta_s, baseline, metrics,
        model_dir, message, events, position (queued), and once finished before/after/primary}."""
        return status_of(default_run(ctx.visitor(request), run))

    def stop_training_api(run: str | None, request: gr.Request) -> dict[str, Any]:
        """API `/stop_training`. No input. Output: {"stopped": run_id or null, "run_dir", "message"}. A running
        training stops after its current step, keeps its best checkpoint and ends in state `stopped`; a queued
        one is taken out of the queue."""
        target = _stop_target(ctx.visitor(request), run)
        if target is None:
            return {"stopped": None, "run_dir": None, "message": "no training of yours is running or queued"}
        stop_training(target)
        return {"stopped": Path(target).name, "run_dir": str(target), "message": "stop requested"}

    def estimate_training_api(
        config_overrides: Any, config: dict[str, Any], dataset: dict | None, request: gr.Request
    ) -> dict[str, Any]:
        """API `/estimate_training`. Input: `config_overrides` as for `/start_training`. Output: {"phases": {loading,
        mining, baseline, training, final_evaluation, saving: seconds}, "total_s", "plan": {steps, evaluations,
        step_s, ...}, "probe": {cached, seconds, device}}, from a short probe measured on this machine (cached per
        model, machine and batch shape), or {"error": message}."""
        try:
            with ctx.heavy(request):
                return _estimate_with(ctx.visitor(request), config, dataset, config_overrides)
        except ConfigError as exc:
            return {"error": str(exc), "errors": exc.errors}
        except Exception as exc:  # data or model problems: a message, never a traceback
            return {"error": str(exc).splitlines()[0] if str(exc) else type(exc).__name__}

    api_estimate.click(
        estimate_training_api, [api_in, ctx.config, ctx.dataset], [api_out], api_name="estimate_training"
    )
    api_start.click(
        start_training_api, [api_in, ctx.config, ctx.dataset, ctx.run], [api_out, ctx.run], api_name="start_training"
    )
    api_status.click(training_status_api, [ctx.run], [api_out], api_name="training_status", concurrency_limit=None)
    api_stop.click(stop_training_api, [ctx.run], [api_out], api_name="stop_training", concurrency_limit=None)
    return {
        "start": start,
        "stop": stop,
        "nproc": nproc,
        "message": message,
        "progress": progress,
        "loss_plot": loss_plot,
        "metrics_plot": metrics_plot,
        "table": table,
        "log": log,
        "timer": timer,
    }


def _estimate_with(v: Visitor, config: dict[str, Any], dataset: dict | None, overrides: Any) -> dict:
    from core.estimate import estimate

    return estimate(run_config(v, config, dataset, overrides)[0])


def _stop_target(v: Visitor, run: str | None) -> str | None:
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


def attach(load: Any, ctx: StudioContext) -> None:
    """After the page's load event (which binds the visitor) show their live run (re-attaching its timer through
    ctx.run's change) or their newest one, with the dataset and corpus it trained on restored into the session."""

    def on_load(run: str | None, dataset: dict | None, config: dict[str, Any], request: gr.Request) -> dict:
        target = default_run(ctx.visitor(request), run)
        new_ds, new_cfg = restore_run_data(target, dataset, config)  # the run's data, not the start-up sample
        out: dict[Any, Any] = {ctx.run: target}
        if new_ds is not dataset:
            out[ctx.dataset] = new_ds
        if new_cfg != config:
            out[ctx.config] = new_cfg
        return out

    load.then(
        on_load,
        [ctx.run, ctx.dataset, ctx.config],
        [ctx.run, ctx.dataset, ctx.config],
        api_visibility="private",
        show_progress="hidden",
    )

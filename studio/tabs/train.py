"""Train tab: Start/Stop, progress, streaming loss and metric curves, a log tail and the before/after table.

Training runs in a subprocess (`core.runs.queue`), so this tab only starts, stops and reads `runs/<id>/events.jsonl`.
A `gr.Timer` polls once a second while the shown run is live and switches itself off when it ends; a page reload
re-attaches through `demo.load` (see `attach`), with the run's dataset. Also registers the `start_training`,
`training_status`, `stop_training` and `estimate_training` API endpoints.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import gradio as gr

from core.config.schema import ConfigError
from core.runs.queue import stop_training
from studio.context import StudioContext
from studio.files import hide_paths
from studio.plots import loss_figure, metrics_figure, progress_html
from studio.run_view import estimate_vs_actual, log_lines, restore_run_data, train_info
from studio.tabs.train_runs import (
    LOG_LINES,
    default_run,
    estimate_text,
    estimate_with,
    final_table,
    launch,
    log_tail,
    process_choices,
    run_events,
    started_message,
    status_of,
    stop_message,
    stop_target,
)

POLL_S = 1.0


def create_train_tab(ctx: StudioContext) -> dict[str, Any]:
    """The Train tab. Returns its components; `attach` wires the page-load re-attach."""
    ui = _layout(ctx)
    _wire_controls(ctx, ui)
    _wire_run_view(ctx, ui)
    api = _api_layout()
    _wire_api_start(ctx, api)
    _wire_api_status(ctx, api)
    return {
        "start": ui.start,
        "stop": ui.stop,
        "nproc": ui.nproc,
        "message": ui.message,
        "progress": ui.progress,
        "loss_plot": ui.loss_plot,
        "metrics_plot": ui.metrics_plot,
        "table": ui.table,
        "log": ui.log,
        "timer": ui.timer,
    }


def _layout(ctx: StudioContext) -> SimpleNamespace:
    """Start/Stop/Estimate, the processes, and the run's view: `ui.view` is what `redraw` updates, `ui.drawn` the
    [run folder, events plotted] of the figures shown (a tick rebuilds them only when events arrived)."""
    ui = SimpleNamespace(info=gr.Markdown(train_info(ctx.dataset.value, ctx.config.value, None)))
    with gr.Row():
        ui.start = gr.Button("Start training", variant="primary", scale=1)
        ui.stop = gr.Button("Stop", variant="stop", scale=1)
        ui.estimate_btn = gr.Button("Estimate time", scale=1)
        choices = process_choices()
        ui.nproc = gr.Dropdown(
            choices,
            value=1,
            label="Processes",
            interactive=len(choices) > 1,
            visible=len(choices) > 1,  # a choice of one is no choice (a CPU-only server trains in one process)
            scale=1,
            info="one training process per GPU, each with its own batch: the global batch is batch size × processes",
        )
        ui.message = gr.Markdown(scale=4)
    # A refused Start, full width (its reason is a sentence); cleared by the next Start or when the run it names ends.
    ui.refusal = gr.Markdown()
    ui.estimate_md = gr.Markdown()
    ui.progress = gr.HTML(progress_html({"state": "idle"}))
    ui.timing = gr.Markdown()
    with gr.Row():
        ui.loss_plot = gr.Plot(loss_figure([]), label="Loss")
        ui.metrics_plot = gr.Plot(metrics_figure([]), label="Metrics")
    ui.table = gr.Markdown()
    ui.log = gr.Textbox(
        label=f"Log (last {LOG_LINES} lines)", lines=10, max_lines=20, interactive=False, autoscroll=True
    )
    ui.timer = gr.Timer(POLL_S, active=False)
    ui.view = [ui.progress, ui.loss_plot, ui.metrics_plot, ui.table, ui.log, ui.timer, ctx.run_ended, ui.timing]
    ui.view.append(ui.refusal)
    ui.drawn = gr.State(None)
    return ui


def _wire_controls(ctx: StudioContext, ui: SimpleNamespace) -> None:
    """Estimate, Start and Stop, and the line saying what a Start would train."""

    def on_estimate(config: dict[str, Any], dataset: dict | None, request: gr.Request) -> str:
        try:
            with ctx.heavy(request):  # the probe trains a few steps: one at a time per visitor
                return estimate_text(ctx.visitor(request), config, dataset)[0]
        except Exception as exc:  # a config or data problem: the same words Start would use
            return f"⚠️ No estimate: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"

    def on_start(config: dict[str, Any], dataset: dict | None, run: str | None, n: int, request: gr.Request) -> dict:
        try:
            run_dir, queued = launch(ctx, ctx.visitor(request), config, dataset, nproc=int(n or 1))
        except (ConfigError, ValueError) as exc:
            # on the page where it stays (a toast vanishes, and one toast plus this line said it twice)
            return {ui.refusal: f"⚠️ **Not started:** {hide_paths(str(exc), ctx.public)}"}
        return {ctx.run: str(run_dir), ui.message: started_message(run_dir, queued, int(n or 1)), ui.refusal: ""}

    def on_stop(run: str | None, request: gr.Request) -> str:
        return stop_message(stop_target(ctx.visitor(request), run))

    ui.estimate_btn.click(on_estimate, [ctx.config, ctx.dataset], [ui.estimate_md], api_visibility="private")
    gr.on(
        [ctx.dataset.change, ctx.config.change, ctx.run.change],
        train_info,
        [ctx.dataset, ctx.config, ctx.run],
        [ui.info],
        api_visibility="private",
        show_progress="hidden",
    )
    ui.start.click(
        on_start,
        [ctx.config, ctx.dataset, ctx.run, ui.nproc],
        [ctx.run, ui.message, ui.refusal],
        api_visibility="private",
    )
    ui.stop.click(on_stop, [ctx.run], [ui.message], concurrency_limit=None, api_visibility="private")


def _wire_run_view(ctx: StudioContext, ui: SimpleNamespace) -> None:
    """Draw the shown run when it changes, and on each tick of the timer while it is live."""
    view, drawn = ui.view, ui.drawn

    def redraw(run_dir: str | None, plotted: list | None = None) -> dict:
        if not run_dir:
            idle = (progress_html({"state": "idle"}), loss_figure([]), metrics_figure([]), "", "")
            return dict(zip([*view, drawn], (*idle, gr.Timer(active=False), None, "", gr.skip(), None), strict=True))
        status = status_of(run_dir)
        events = run_events(run_dir)
        live = status["state"] in ("running", "queued")  # a queued run is polled until it has run
        mark = [run_dir, len(events)]
        out = {
            ui.progress: progress_html(status),
            ui.table: hide_paths(final_table(status), ctx.public),
            ui.log: hide_paths(log_lines(events, LOG_LINES) or log_tail(run_dir), ctx.public),
            ui.timer: gr.Timer(active=live),
            ctx.run_ended: None if live else run_dir,
            ui.timing: estimate_vs_actual(events),
            drawn: mark,
        }
        if not live:  # a refusal naming this run ("still running") is stale once it has ended
            out[ui.refusal] = ""
        if plotted is None or list(plotted) != mark:  # new events: the figures are rebuilt, else left as they are
            out |= {ui.loss_plot: loss_figure(events), ui.metrics_plot: metrics_figure(events)}
        return out

    ctx.run.change(redraw, [ctx.run], [*view, drawn], api_visibility="private", show_progress="hidden")
    ui.timer.tick(
        redraw,
        [ctx.run, drawn],
        [*view, drawn],
        concurrency_limit=None,
        api_visibility="private",
        show_progress="hidden",
    )


def _api_layout() -> SimpleNamespace:
    """Hidden components for the API endpoints (scripts)."""
    with gr.Column(visible=False):
        api = SimpleNamespace(api_in=gr.JSON(), api_out=gr.JSON())
        api.start, api.status, api.stop, api.estimate = gr.Button(), gr.Button(), gr.Button(), gr.Button()
    return api


def _wire_api_start(ctx: StudioContext, api: SimpleNamespace) -> None:
    """`/estimate_training` and `/start_training`."""

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

    def estimate_training_api(
        config_overrides: Any, config: dict[str, Any], dataset: dict | None, request: gr.Request
    ) -> dict[str, Any]:
        """API `/estimate_training`. Input: `config_overrides` as for `/start_training`. Output: {"phases": {loading,
        mining, baseline, training, final_evaluation, saving: seconds}, "total_s", "plan": {steps, evaluations,
        step_s, ...}, "probe": {cached, seconds, device}}, from a short probe measured on this machine (cached per
        model, machine and batch shape), or {"error": message}."""
        try:
            with ctx.heavy(request):
                return estimate_with(ctx.visitor(request), config, dataset, config_overrides)
        except ConfigError as exc:
            return {"error": str(exc), "errors": exc.errors}
        except Exception as exc:  # data or model problems: a message, never a traceback
            return {"error": str(exc).splitlines()[0] if str(exc) else type(exc).__name__}

    api.estimate.click(
        estimate_training_api, [api.api_in, ctx.config, ctx.dataset], [api.api_out], api_name="estimate_training"
    )
    api.start.click(
        start_training_api,
        [api.api_in, ctx.config, ctx.dataset, ctx.run],
        [api.api_out, ctx.run],
        api_name="start_training",
    )


def _wire_api_status(ctx: StudioContext, api: SimpleNamespace) -> None:
    """`/training_status` and `/stop_training`: never queued behind other events."""

    def training_status_api(run: str | None, request: gr.Request) -> dict[str, Any]:
        """API `/training_status`. No input. Output: the status of this visitor's running (or queued) training,
        else of this session's last run, else of their newest run: {state: idle|queued|running|finished|stopped|
        failed|interrupted, phase, run_id, run_dir, step, max_steps, epoch, loss, eta_s, baseline, metrics,
        model_dir, message, events, position (queued), and once finished before/after/primary}."""
        return status_of(default_run(ctx.visitor(request), run))

    def stop_training_api(run: str | None, request: gr.Request) -> dict[str, Any]:
        """API `/stop_training`. No input. Output: {"stopped": run_id or null, "run_dir", "message"}. A running
        training stops after its current step, keeps the model it has (its best checkpoint with
        `evaluation.save_best_model`) and ends in state `stopped`; a queued one is taken out of the queue."""
        target = stop_target(ctx.visitor(request), run)
        if target is None:
            return {"stopped": None, "run_dir": None, "message": "no training of yours is running or queued"}
        stop_training(target)
        return {"stopped": Path(target).name, "run_dir": str(target), "message": "stop requested"}

    api.status.click(training_status_api, [ctx.run], [api.api_out], api_name="training_status", concurrency_limit=None)
    api.stop.click(stop_training_api, [ctx.run], [api.api_out], api_name="stop_training", concurrency_limit=None)


def attach(load: Any, ctx: StudioContext) -> None:
    """After the page's load event (which binds the visitor) and the restore of their saved state, show their live
    run (re-attaching its timer through ctx.run's change) or their newest one; with no saved state of their own, the
    dataset and corpus it trained on are restored into the session."""

    start = (ctx.dataset.value, ctx.config.value)

    def on_load(run: str | None, dataset: dict | None, config: dict[str, Any], request: gr.Request) -> dict:
        target = default_run(ctx.visitor(request), run)
        out: dict[Any, Any] = {ctx.run: target}
        if (dataset, config) != start:  # the visitor's own saved work (studio/saved_state.py) wins over the run's
            return out
        new_ds, new_cfg = restore_run_data(target, dataset, config)  # the run's data, not the start-up sample
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

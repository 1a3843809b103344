"""Runs side by side (Export tab, under the run history): two or more of the visitor's runs, their evaluation curves
of one metric overlaid with their baselines, and the config keys in which they differ. Also `/compare_runs`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gradio as gr
import pandas as pd

from core.config.rules import PRIMARY
from core.runs.folders import config_differences, load_run
from studio import errors
from studio.context import StudioContext
from studio.plots import curve_metrics, runs_figure
from studio.tabs.train_runs import run_events

MAX_RUNS = 8  # more curves than colours stop being readable


def overlay(ctx: StudioContext, request: gr.Request | None, runs: list[str] | None, metric: str | None) -> dict:
    """{figure, metrics (the choices), metric, differences, summary} for runs this visitor owns. Raises
    PathRefused for another visitor's run, ValueError for fewer than two runs or a run that does not exist."""
    v = ctx.visitor(request)
    picked = list(dict.fromkeys(runs or []))
    if len(picked) < 2:
        raise ValueError("Pick two or more runs to see them side by side.")
    if len(picked) > MAX_RUNS:
        raise ValueError(f"Pick at most {MAX_RUNS} runs: more curves than that cannot be told apart.")
    dirs = [v.run(r) for r in picked]
    missing = [Path(d).name for d in dirs if not (Path(d) / "events.jsonl").is_file()]
    if missing:
        raise ValueError(f"No such run: {', '.join(missing)}.")
    events = {Path(d).name: run_events(d) for d in dirs}
    measured = list(dict.fromkeys(m for ev in events.values() for m in curve_metrics(ev)))
    primary = PRIMARY.get(load_run(dirs[0]).format or "", PRIMARY["pairs"])
    default = primary if primary in measured else (measured[0] if measured else primary)
    metric = metric if metric in measured else default
    summary = []
    for name, ev in events.items():
        evals = [e for e in ev if e.get("type") == "eval" and (e.get("metrics") or {}).get(metric) is not None]
        base = next((e["metrics"][metric] for e in evals if e.get("baseline")), None)
        last = next((e["metrics"][metric] for e in reversed(evals) if not e.get("baseline")), None)
        summary.append({"run": name, "metric": metric, "baseline": base, "last": last})
    return {
        "figure": runs_figure(events, metric),
        "metrics": measured,
        "metric": metric,
        "differences": config_differences(dirs),
        "summary": summary,
    }


def create_runs_compare(ctx: StudioContext, run_choices: list[str]) -> dict[str, Any]:
    """The layout and its wiring; returns the run picker, so the history's refresh can re-list it."""
    with gr.Accordion("Runs side by side", open=False):
        with gr.Row():
            runs = gr.Dropdown(run_choices, multiselect=True, label="Runs (two or more)", scale=4)
            metric = gr.Dropdown([], value=None, label="Metric (default: the primary one)", scale=2)
            show = gr.Button("Show side by side", scale=1)
        line = gr.Markdown()
        plot = gr.Plot(show_label=False)
        diff = gr.Dataframe(interactive=False, wrap=True, label="Config keys that differ between these runs")

    def on_show(picked: list[str] | None, chosen: str | None, request: gr.Request) -> dict:
        try:
            out = overlay(ctx, request, picked, chosen)
        except Exception as exc:
            return {line: errors.warn(exc, "runs side by side")}
        same = "" if len(out["differences"]) else " Their configs are the same."
        return {
            plot: out["figure"],
            metric: gr.update(choices=out["metrics"], value=out["metric"]),
            diff: out["differences"],
            line: f"{len(out['summary'])} runs, {out['metric']} per evaluation.{same}",
        }

    def compare_runs(runs: list[str] | None, metric: str | None, request: gr.Request) -> dict[str, Any]:
        """API `/compare_runs`. Input: `runs`, two or more run ids of this visitor; `metric` (None: the primary
        one). Output: {metric, metrics, runs: [{run, metric, baseline, last}], differences: [{key, <run>: value}]}
        or {error}."""
        try:
            out = overlay(ctx, request, runs, metric)
        except Exception as exc:
            return {"error": errors.message(exc, "compare_runs")}
        diffs = out["differences"]
        return {
            "metric": out["metric"],
            "metrics": out["metrics"],
            "runs": out["summary"],
            "differences": diffs.where(pd.notna(diffs), None).to_dict("records"),
        }

    gr.on([show.click, metric.input], on_show, [runs, metric], [plot, metric, diff, line], api_visibility="private")
    with gr.Column(visible=False):
        api_runs, api_metric, api_out, api_btn = gr.JSON(), gr.Textbox(), gr.JSON(), gr.Button()
    api_btn.click(compare_runs, [api_runs, api_metric], [api_out], api_name="compare_runs")
    return {"runs": runs}

"""Events and statistics -> plotly figures. Pure functions: no Gradio, no files, so they are unit-testable.

Trace names are part of the contract (tests and the browser test look them up): "loss", one trace per metric
named by the metric, "<metric> baseline" for the step-0 evaluation and "best checkpoint" for the marker.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Sequence
from typing import Any

import plotly.graph_objects as go

from core.runs.progress import format_eta

IR_CURVES = ["ndcg@10", "mrr@10", "accuracy@1"]  # what the Train tab plots for pairs and triplets
SCORED_CURVES = ["spearman"]  # and for scored pairs (CoSENT)
COLORS = ["#2563eb", "#16a34a", "#ea580c", "#9333ea", "#db2777", "#0891b2", "#65a30d"]
SHOWN_CURVES = 3  # metrics drawn by default: the primary and the next two; the rest are a legend click away
_LAYOUT: dict[str, Any] = {
    "template": "plotly_white",
    "height": 360,
    "margin": {"l": 50, "r": 20, "t": 40, "b": 40},
    "legend": {"orientation": "h", "y": -0.3, "yanchor": "top"},  # below the x-axis title, never over it
}


def _empty(title: str, note: str) -> go.Figure:
    """A titled, empty figure with a note: nicer than a blank box while a run is still loading."""
    fig = go.Figure()
    fig.update_layout(title=title, **_LAYOUT)
    fig.add_annotation(text=note, showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper", font={"color": "#6b7280"})
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    return fig


def loss_figure(events: Iterable[dict[str, Any]]) -> go.Figure:
    """Training loss per logged step (train_step events)."""
    steps = [e for e in events if e.get("type") == "train_step" and e.get("loss") is not None]
    if not steps:
        return _empty("Training loss", "waiting for the first training step…")
    fig = go.Figure(
        go.Scatter(
            x=[e["step"] for e in steps],
            y=[e["loss"] for e in steps],
            mode="lines+markers",
            name="loss",
            line={"color": COLORS[0]},
            marker={"size": 4},
        )
    )
    max_steps = steps[-1].get("max_steps")
    fig.update_layout(title="Training loss", xaxis_title="step", yaxis_title="loss", **_LAYOUT)
    if max_steps:  # a fixed x range: the curve grows into the plot instead of the axis rescaling every second
        fig.update_xaxes(range=[0, max_steps])
    return fig


def curve_metrics(events: Sequence[dict[str, Any]]) -> list[str]:
    """The metrics to plot: the run's evaluation.metrics (from its run_started config) that its evaluations
    measure; without that config, Spearman for scored pairs and the main IR metrics otherwise."""
    seen = {k for e in events if e.get("type") == "eval" for k in (e.get("metrics") or {})}
    started = next((e for e in events if e.get("type") == "run_started"), None)
    selected = (((started or {}).get("config") or {}).get("evaluation") or {}).get("metrics")
    if selected and seen:
        chosen = [m for m in selected if m in seen]
        if chosen:  # the primary metric first: it is the one the run is judged by, drawn by default
            primary = "spearman" if "spearman" in chosen and not set(chosen) & set(IR_CURVES) else "ndcg@10"
            return sorted(chosen, key=lambda m: (m != primary, m not in IR_CURVES))
    if "spearman" in seen and not seen & set(IR_CURVES):
        return SCORED_CURVES
    return [m for m in IR_CURVES if m in seen] or IR_CURVES


def best_step(events: Iterable[dict[str, Any]]) -> int | None:
    """Step of the best checkpoint so far, from the last checkpoint event's `best` path (…/checkpoint-N)."""
    best = None
    for e in events:
        if e.get("type") == "checkpoint" and e.get("best"):
            match = re.search(r"checkpoint-(\d+)$", str(e["best"]).rstrip("/"))
            if match:
                best = int(match.group(1))
    return best


def metrics_figure(events: Sequence[dict[str, Any]], metrics: list[str] | None = None) -> go.Figure:
    """Retrieval metrics per evaluation, the step-0 baseline as a dashed horizontal line per metric, and a star
    on the best checkpoint (of the first, primary metric)."""
    events = list(events)
    evals = [e for e in events if e.get("type") == "eval" and e.get("metrics")]
    if not evals:
        return _empty("Evaluation", "the baseline evaluation runs before the first step…")
    metrics = metrics or curve_metrics(events)
    baseline = next((e for e in evals if e.get("baseline")), None)
    # The final evaluation repeats the last step on the full corpus: keep it apart so the curve stays monotone in x.
    during = [e for e in evals if not e.get("baseline") and not e.get("final")]
    final = next((e for e in reversed(evals) if e.get("final")), None)
    max_step = _last_step(events)
    fig = go.Figure()
    for i, name in enumerate(metrics):
        # one legend entry per metric (its curve, baseline and final toggle together); beyond the first three the
        # metric is listed but hidden, one click away: seven metrics at once make the plot unreadable
        shown = True if i < SHOWN_CURVES else "legendonly"
        _add_metric_traces(fig, name, COLORS[i % len(COLORS)], during, baseline, final, max_step, shown)
    _add_best_marker(fig, best_step(events), metrics[0], during)
    # taller than the others: its legend (a row per metric or two on a phone) must leave a plot above it
    fig.update_layout(
        title="Evaluation (dashed: before training)",
        xaxis_title="step",
        yaxis_title="score",
        **_LAYOUT | {"height": 460},
    )
    fig.update_xaxes(range=[-0.02 * max_step, max_step * 1.02])
    values = [v for e in evals for k, v in e["metrics"].items() if k in metrics and v is not None]
    if values:  # scores live in [0, 1] (Spearman in [-1, 1]): a fixed scale makes runs comparable at a glance
        fig.update_yaxes(range=[min(0.0, min(values)) - 0.02, max(1.0, max(values)) + 0.02])
    return fig


def _last_step(events: list[dict[str, Any]]) -> int:
    """The x-axis end: the run's max_steps once known, else the last step logged or evaluated (at least 1)."""
    max_step = max([e.get("step", 0) for e in events if e.get("type") in ("train_step", "eval")] + [1])
    for e in events:
        if e.get("type") == "train_step" and e.get("max_steps"):
            max_step = max(max_step, int(e["max_steps"]))
    return max_step


def _curve(fig: go.Figure, points: list[tuple[int, float]], name: str, color: str, **trace: Any) -> None:
    fig.add_trace(
        go.Scatter(
            x=[p[0] for p in points],
            y=[p[1] for p in points],
            mode="lines+markers",
            name=name,
            line={"color": color},
            **trace,
        )
    )


def _baseline(fig: go.Figure, value: float, end: int, name: str, color: str, **trace: Any) -> None:
    """A dashed horizontal line from step 0 to `end`: the score before training."""
    fig.add_trace(
        go.Scatter(
            x=[0, end],
            y=[value, value],
            mode="lines",
            name=name,
            line={"color": color, "dash": "dash", "width": 1},
            hoverinfo="name+y",
            **trace,
        )
    )


def _add_metric_traces(
    fig: go.Figure,
    name: str,
    color: str,
    during: list[dict[str, Any]],
    baseline: dict[str, Any] | None,
    final: dict[str, Any] | None,
    max_step: int,
    visible: bool | str = True,
) -> None:
    """One metric's traces: its curve (reaching the final evaluation), its dashed baseline and its final marker, in
    one legend group with a single legend entry."""
    group = {"legendgroup": name, "visible": visible}
    first = len(fig.data)
    points = [(e["step"], e["metrics"][name]) for e in during if e["metrics"].get(name) is not None]
    if final and final["metrics"].get(name) is not None and (not points or final["step"] > points[-1][0]):
        points.append((final["step"], final["metrics"][name]))  # the curve reaches the last step
    if points:
        _curve(fig, points, name, color, **group)
    if baseline and baseline["metrics"].get(name) is not None:
        _baseline(fig, baseline["metrics"][name], max_step, f"{name} baseline", color, **group)
    if final and final["metrics"].get(name) is not None:
        fig.add_trace(
            go.Scatter(
                x=[final["step"]],
                y=[final["metrics"][name]],
                mode="markers",
                name=f"{name} final",
                marker={"color": color, "symbol": "diamond", "size": 10},
                **group,
            )
        )
    for i, t in enumerate(fig.data[first:]):
        t.showlegend = i == 0


def _add_best_marker(fig: go.Figure, best: int | None, primary: str, during: list[dict[str, Any]]) -> None:
    """A star on the best checkpoint's evaluation of the primary metric, when that step was evaluated."""
    at_best = next((e for e in reversed(during) if e["step"] == best and primary in e["metrics"]), None)
    if at_best is not None:
        fig.add_trace(
            go.Scatter(
                x=[best],
                y=[at_best["metrics"][primary]],
                mode="markers",
                name="best checkpoint",
                marker={"symbol": "star", "size": 16, "color": "#facc15", "line": {"color": "#111827", "width": 1}},
            )
        )


def runs_figure(runs: dict[str, Sequence[dict[str, Any]]], metric: str | None = None) -> go.Figure:
    """Several runs' evaluation curves of one metric (default: the first run's primary metric), one colour per run,
    each with its dashed baseline: the run history's side-by-side view. Trace names: "<run>" and "<run> baseline"."""
    if not runs:
        return _empty("Runs side by side", "pick two or more runs")
    metric = metric or curve_metrics(list(next(iter(runs.values()))))[0]
    fig = go.Figure()
    for i, (name, events) in enumerate(runs.items()):
        evals = [e for e in events if e.get("type") == "eval" and (e.get("metrics") or {}).get(metric) is not None]
        color = COLORS[i % len(COLORS)]
        # by step, the later evaluation winning: the final one (full corpus) replaces the last step's
        points = sorted({e.get("step", 0): e["metrics"][metric] for e in evals if not e.get("baseline")}.items())
        if points:
            _curve(fig, points, name, color)
        baseline = next((e for e in evals if e.get("baseline")), None)
        if baseline:
            _baseline(fig, baseline["metrics"][metric], max([p[0] for p in points] + [1]), f"{name} baseline", color)
    if not fig.data:
        return _empty("Runs side by side", f"none of these runs measured {metric}")
    fig.update_layout(
        title=f"{metric} per step (dashed: before training)", xaxis_title="step", yaxis_title=metric, **_LAYOUT
    )
    return fig


def token_length_figure(
    lengths: dict[str, list[int]],
    max_seq_length: int | None,
    note: str = "no tokenizer available: token lengths not computed",
) -> go.Figure:
    """One histogram of token counts per text field, side by side, each on its own x scale (short queries are no
    sliver beside long documents), with max_seq_length as a dashed line. `note` says why when there is nothing."""
    from plotly.subplots import make_subplots

    fields = [(f, v) for f, v in lengths.items() if v]
    if not fields:
        return _empty("Token lengths", note)
    fig = make_subplots(rows=1, cols=len(fields), subplot_titles=[f for f, _ in fields], horizontal_spacing=0.08)
    cap = 4 * max_seq_length if max_seq_length else None
    clipped = 0
    for i, (field, values) in enumerate(fields):
        if cap and max(values) > cap:  # one huge text must not stretch the axis: counted in the last bin instead
            clipped += sum(v > cap for v in values)
            values = [min(v, cap) for v in values]
        fig.add_trace(
            go.Histogram(x=values, name=field, marker={"color": COLORS[i % len(COLORS)]}, nbinsx=30), row=1, col=i + 1
        )
        if max_seq_length and max(values) >= 0.5 * max_seq_length:  # the limit only where texts come near it
            fig.add_vline(
                x=max_seq_length,
                line={"color": "#dc2626", "dash": "dash"},
                row=1,
                col=i + 1,
                annotation_text=f"max_seq_length={max_seq_length}",
                annotation_position="top left",
            )
        fig.update_xaxes(title_text="tokens", row=1, col=i + 1)
    fig.update_yaxes(title_text="texts", row=1, col=1)
    fig.update_layout(title="Token lengths per field", showlegend=False, **_LAYOUT)
    if clipped:
        fig.add_annotation(
            text=f"{clipped} text{'s' * (clipped != 1)} over {cap} tokens counted at {cap}",
            showarrow=False,
            x=1,
            y=1.12,
            xref="paper",
            yref="paper",
            xanchor="right",
            font={"color": "#6b7280", "size": 11},
        )
    fig.update_xaxes(rangemode="nonnegative")  # counts start at 0: no axis running into negative lengths
    return fig


def similarity_figure(values: Sequence[float]) -> go.Figure:
    """Histogram of the similarity labels of scored pairs."""
    if not len(values):
        return _empty("Similarity", "no scored pairs")
    fig = go.Figure(
        go.Histogram(
            x=list(values),
            xbins={"start": 0, "end": 1.0001, "size": 0.05},
            name="similarity",
            marker={"color": COLORS[2]},
        )
    )
    fig.update_layout(title="Similarity labels", xaxis_title="similarity", yaxis_title="pairs", **_LAYOUT)
    return fig


def format_size(n_bytes: float) -> str:
    """One way to write a size everywhere in the studio, in the units the browser's file boxes use (1024-based)."""
    value, unit = float(n_bytes), "B"
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if value < 1024 or unit == "TB":
            break
        value /= 1024
    return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"


def phase_parts(status: dict[str, Any]) -> list[str]:
    """The live phase's own progress and what is left of it and of the whole run (from the run's estimate)."""
    import time

    now = status.get("phase_progress") or {}
    if not now:
        return []
    out = []
    if now.get("phase") != "training" and now.get("total", 1) > 1:
        out.append(f"{now.get('done')}/{now.get('total')} texts encoded")  # >1 only for the encoding phases
    left = now.get("eta_s")
    if left is not None and now.get("done") == 0 and now.get("time"):  # an estimate made when the phase began
        left = max(0.0, left - (time.time() - now["time"]))
    if left is not None and now.get("phase") != "training":
        out.append(f"phase ETA {format_eta(left)}")
    phases = list(((status.get("estimate") or {}).get("phases") or {}).items())
    names = [n for n, _ in phases]
    if left is not None and now.get("phase") in names:  # the phases after this one, as estimated
        later = sum(v or 0 for n, v in phases[names.index(now["phase"]) + 1 :])
        out.append(f"run ETA {format_eta(left + later)}")
    return out


def progress_html(status: dict[str, Any]) -> str:
    """A progress bar with state, phase, step, epoch, loss and ETA (inline styles: no CSS file needed)."""
    state = status.get("state", "idle")
    if state == "idle" or not status.get("run_dir"):
        return "<div style='color:#6b7280'>No run yet. Pick a dataset, check the config, then press Start.</div>"
    if state == "queued":
        eta = status.get("estimated_start_s")
        when = f"starts in about {format_eta(eta)}" if eta is not None else "starts when the runs ahead finish"
        ahead = int(status.get("ahead") or 0)
        line = "next in line" if ahead == 0 else f"{ahead} training{'s' * (ahead != 1)} ahead of it"
        return (
            f"<div><b>queued</b> · {html.escape(str(status.get('run_id', '')))}: {line} · {when}. It starts by "
            "itself, even if you close this page; Stop cancels it.</div>"
        )
    step, max_steps = status.get("step") or 0, status.get("max_steps")
    frac = min(1.0, step / max_steps) if max_steps else 0.0
    if state == "finished":
        frac = 1.0
    color = {"running": "#2563eb", "finished": "#16a34a", "stopped": "#ca8a04"}.get(state, "#dc2626")
    parts = [f"<b>{state}</b>" + (f" · {status.get('phase')}" if state == "running" else "")]
    parts.append(f"step {step}/{max_steps}" if max_steps else "step –")
    if (status.get("world_size") or 1) > 1:
        parts.append(f"{status['world_size']} processes")
    if status.get("epoch") is not None:
        parts.append(f"epoch {status['epoch']:.2f}")
    if status.get("loss") is not None:
        parts.append(f"loss {status['loss']:.4f}")
    if state == "running":
        parts.append(f"ETA {format_eta(status.get('eta_s'))}")
        parts += phase_parts(status)
    bar = (
        f"<div style='background:#e5e7eb;border-radius:6px;height:14px;overflow:hidden'>"
        f"<div style='width:{frac * 100:.1f}%;background:{color};height:100%'></div></div>"
    )
    return f"<div><div style='margin-bottom:4px'>{html.escape(str(status.get('run_id', '')))}: {' · '.join(parts)}</div>{bar}</div>"

"""studio.plots from synthetic event lists: the figures the Train and Data tabs draw."""

from __future__ import annotations

from studio.plots import (
    best_step,
    curve_metrics,
    loss_figure,
    metrics_figure,
    progress_html,
    runs_figure,
    similarity_figure,
    token_length_figure,
)

IR = {"ndcg@10": 0.5, "mrr@10": 0.4, "accuracy@1": 0.3, "recall@10": 0.9}


def events() -> list[dict]:
    out: list[dict] = [
        {"type": "run_started", "config": {}, "data": {}},
        {"type": "eval", "step": 0, "metrics": IR, "baseline": True},
    ]
    for step in range(1, 6):
        out.append(
            {
                "type": "train_step",
                "step": step,
                "max_steps": 6,
                "epoch": step / 6,
                "loss": 1.0 / step,
                "eta_s": 6 - step,
            }
        )
        if step % 2 == 0:
            out.append(
                {"type": "eval", "step": step, "partial": True, "metrics": {k: v + step / 100 for k, v in IR.items()}}
            )
            out.append(
                {
                    "type": "checkpoint",
                    "step": step,
                    "path": f"/r/checkpoints/checkpoint-{step}",
                    "best": "/r/checkpoints/checkpoint-2",
                }
            )
    out.append({"type": "eval", "step": 6, "final": True, "metrics": IR | {"ndcg@10": 0.6}})
    return out


def trace(fig, name: str):
    matches = [t for t in fig.data if t.name == name]
    assert matches, f"no trace {name!r} in {[t.name for t in fig.data]}"
    return matches[0]


def test_loss_curve_has_one_point_per_step() -> None:
    fig = loss_figure(events())
    loss = trace(fig, "loss")
    assert list(loss.x) == [1, 2, 3, 4, 5]
    assert loss.y[0] == 1.0 and loss.y[-1] == 0.2
    assert tuple(fig.layout.xaxis.range) == (0, 6)


def test_metric_curves_baseline_and_best_checkpoint() -> None:
    fig = metrics_figure(events())
    ndcg = trace(fig, "ndcg@10")
    assert list(ndcg.x) == [2, 4, 6]  # the curve ends at the last step, with the final evaluation
    assert ndcg.y[-1] == 0.6
    base = trace(fig, "ndcg@10 baseline")
    assert list(base.y) == [0.5, 0.5] and base.x[0] == 0 and base.x[-1] == 6 and base.line.dash == "dash"
    for name in ("mrr@10", "accuracy@1", "mrr@10 baseline", "accuracy@1 baseline"):
        trace(fig, name)
    assert "recall@10" not in {t.name for t in fig.data}
    best = trace(fig, "best checkpoint")
    assert list(best.x) == [2] and abs(best.y[0] - 0.52) < 1e-9
    assert list(trace(fig, "ndcg@10 final").y) == [0.6]


def test_best_step_and_scored_metrics() -> None:
    assert best_step(events()) == 2
    assert best_step([{"type": "checkpoint", "best": None}]) is None
    scored = [
        {"type": "eval", "step": 0, "metrics": {"spearman": 0.7, "pearson": 0.6}, "baseline": True},
        {"type": "eval", "step": 3, "metrics": {"spearman": 0.8, "pearson": 0.7}, "partial": True},
    ]
    assert curve_metrics(scored) == ["spearman"]
    fig = metrics_figure(scored)
    assert list(trace(fig, "spearman").y) == [0.8] and list(trace(fig, "spearman baseline").y) == [0.7, 0.7]


def test_empty_figures_say_what_they_wait_for() -> None:
    for fig in (loss_figure([]), metrics_figure([]), token_length_figure({}, 256), similarity_figure([])):
        assert not fig.data and fig.layout.annotations


def test_token_lengths_mark_max_seq_length() -> None:
    fig = token_length_figure({"query": [5, 9, 12], "document": [40, 300, 80]}, 256)
    assert [t.name for t in fig.data] == ["query", "document"]
    assert [s.x0 for s in fig.layout.shapes] == [256]  # on the documents' plot only: queries stay far below it
    assert fig.data[0].xaxis != fig.data[1].xaxis  # each field on its own scale, not a sliver beside the other


def test_similarity_histogram_and_progress() -> None:
    assert list(similarity_figure([0.1, 0.95]).data[0].x) == [0.1, 0.95]
    html = progress_html(
        {
            "state": "running",
            "phase": "training",
            "run_id": "r<1>",
            "run_dir": "/r",
            "step": 3,
            "max_steps": 6,
            "epoch": 0.5,
            "loss": 0.25,
            "eta_s": 75,
        }
    )
    assert "step 3/6" in html and "ETA 1:15" in html and "width:50.0%" in html and "r&lt;1&gt;" in html
    assert "No run yet" in progress_html({"state": "idle", "run_dir": None})


def test_progress_shows_the_live_phase_and_what_is_left() -> None:
    import time

    estimate = {
        "phases": {"loading": 1, "mining": 60, "baseline": 5, "training": 300, "final_evaluation": 20, "saving": 2}
    }
    mining = {
        "state": "running",
        "phase": "mining (encoding)",
        "run_id": "r",
        "run_dir": "/r",
        "step": 0,
        "estimate": estimate,
        "phase_progress": {"phase": "mining", "done": 0, "total": 1, "eta_s": 60, "time": time.time() - 20},
    }
    html = progress_html(mining)
    assert "mining (encoding)" in html and "phase ETA 0:40" in html and "run ETA 6:07" in html
    # Inside the encode, the count of texts and the ETA extrapolated from it (core.models.encoding.counting).
    encoding = dict(mining, phase_progress={"phase": "mining", "done": 800, "total": 3200, "eta_s": 45.0})
    html = progress_html(encoding)
    assert "800/3200 texts encoded" in html and "phase ETA 0:45" in html and "run ETA 6:12" in html
    training = dict(
        mining,
        phase="training",
        step=3,
        max_steps=6,
        eta_s=90,
        phase_progress={"phase": "training", "done": 3, "total": 6, "eta_s": 90, "time": time.time()},
    )
    html = progress_html(training)
    assert "ETA 1:30" in html and "run ETA 1:52" in html and "phase ETA" not in html


def test_runs_side_by_side_one_colour_per_run_with_baselines() -> None:
    other = [
        e | {"metrics": {k: v - 0.1 for k, v in e["metrics"].items()}} if e["type"] == "eval" else e for e in events()
    ]
    fig = runs_figure({"run-a": events(), "run-b": other}, "ndcg@10")
    a, b = trace(fig, "run-a"), trace(fig, "run-b")
    assert list(a.x) == [2, 4, 6] and a.y[-1] == 0.6  # the final evaluation replaces the last step's
    assert abs(b.y[-1] - 0.5) < 1e-9 and a.line.color != b.line.color
    assert list(trace(fig, "run-b baseline").y) == [0.4, 0.4]
    assert "recall@10" in runs_figure({"run-a": events()}, "recall@10").layout.title.text
    assert not runs_figure({"run-a": events()}, "spearman").data  # not measured: an empty figure that says so

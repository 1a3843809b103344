"""The Train tab's 1-s tick rebuilds its two figures only when the run wrote new events since the last tick."""

from __future__ import annotations

import gradio as gr

from core.runs.events import EventWriter
from core.runs.folders import EVENTS_FILE


def test_tick_skips_the_figures_until_new_events_arrive(tmp_path):
    from studio.app import create_app

    demo = create_app(workspace=tmp_path / "workspace", runs_dir=tmp_path / "runs")
    fn = next(
        f
        for f in demo.fns.values()
        if getattr(f.fn, "__qualname__", "") == "_wire_run_view.<locals>.redraw" and len(f.inputs) == 2
    )

    def tick(*args) -> list:  # the handler's {component: value} in the order of its outputs, as gradio applies it
        out = fn.fn(*args)
        return [out.get(c, gr.skip()) for c in fn.outputs]

    run = tmp_path / "run"
    run.mkdir()
    writer = EventWriter(run / EVENTS_FILE)
    writer.emit("run_started", kind="train")
    writer.emit("train_step", step=1, epoch=0.1, loss=1.5)
    first = tick(str(run), None)
    assert first[1] != gr.skip() and first[2] != gr.skip() and first[-1] == [str(run), 2]
    same = tick(str(run), first[-1])
    assert same[1] == gr.skip() and same[2] == gr.skip() and same[-1] == first[-1]
    writer.emit("train_step", step=2, epoch=0.2, loss=1.2)
    later = tick(str(run), same[-1])
    assert later[1] != gr.skip() and later[-1] == [str(run), 3]

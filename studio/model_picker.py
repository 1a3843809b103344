"""The two-model picker the Compare and RAG tabs share: model A (by default the config's base model) and model B
(by default the shown run's model, else output_dir), each a dropdown of the known models that also takes any name."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gradio as gr

from core.config.schema import DEFAULT_MODEL
from core.models.choices import model_choices as all_model_choices
from core.models.load import is_model_dir
from core.public.sandbox import PathRefused
from core.retrieval import compare as cmp
from studio.files import hide_paths, shown_path


def run_or_output_model(run_dir: str | None, config: dict[str, Any] | None) -> str:
    """The run's own model, else output_dir (which may not exist yet: using it then says to train first)."""
    return cmp.run_model_dir(run_dir) or str((config or {}).get("output_dir") or "outputs/embedding_model")


def choices(visitor: Any, config: dict[str, Any] | None, *keep: str) -> list[tuple[str, str]]:
    """(label, value) pairs: base, bundled, fine-tuned, cached and suggested models, plus the current picks.
    `visitor` None (before a public visitor is known): the base model and the picks only. A public visitor's runs
    and output_dir are looked up in their own folder, never the server's; they are offered only models this server
    will load for them (no "needs download" without downloads), named relative to their folder, and a pick that
    cannot be used says why in its label."""
    cfg = config or {}
    base = cfg.get("model_name") or DEFAULT_MODEL
    if visitor is None:
        return [(_unavailable(v, None) or v, v) for v in dict.fromkeys([base, *keep]) if v]
    found = all_model_choices(visitor.runs_dir, base, own_output_dir(visitor, cfg))
    if visitor.public and not visitor.sandbox.allow_downloads:
        found = [c for c in found if c["cached"]]
    pairs = [(hide_paths(c["label"], visitor.public), shown_path(c["value"], visitor)) for c in found]
    listed = {v for _, v in pairs}
    for value in dict.fromkeys(shown_path(k, visitor) for k in keep if k):
        if value not in listed:
            pairs.append((_unavailable(value, visitor) or value, value))
    return pairs


def _unavailable(value: str, visitor: Any) -> str | None:
    """A label saying why a pick cannot be used as it stands (a model not trained yet, a refused one), or None."""
    try:
        name = visitor.model(value) if visitor is not None else value
    except PathRefused as exc:
        why = str(exc).split(": ", 1)[-1]
        return f"[not trained yet] {value}" if "yet" in why else f"[unavailable: {why[:90]}] {value}"
    first = str(name).split("/")[0]
    if (first in ("outputs", "runs") or Path(str(name)).is_absolute()) and not is_model_dir(name):
        return f"[not trained yet] {value}"
    return None


def own_output_dir(visitor: Any, config: dict[str, Any] | None) -> str | None:
    """The config's output_dir inside the visitor's folder (a public visitor's is never looked up elsewhere), or
    None when it lies outside."""
    output_dir = (config or {}).get("output_dir")
    if not output_dir:
        return None
    try:
        return str(visitor.path(output_dir, "output_dir", write=True))
    except PathRefused:
        return None


def model_pair(ctx: Any, follow_run: bool = False, scale: int | None = None) -> tuple[gr.Dropdown, gr.Dropdown]:
    """Both dropdowns in one row. `follow_run`: a "↻ models" button re-lists the models, and picking another run
    (or a run ending) sets model B to that run's model."""
    cfg0 = ctx.config.value if isinstance(ctx.config.value, dict) else {}
    b0 = run_or_output_model(ctx.run.value, cfg0)
    start = choices(None if ctx.public else ctx.visitor(None), cfg0, b0)
    with gr.Row():
        model_a = gr.Dropdown(
            start,
            value=cfg0.get("model_name") or DEFAULT_MODEL,
            allow_custom_value=True,
            label="Model A (e.g. the base model)",
            scale=scale,
        )
        model_b = gr.Dropdown(
            start, value=b0, allow_custom_value=True, label="Model B (e.g. the fine-tuned model)", scale=scale
        )
        refresh = gr.Button("↻ models", size="sm", scale=0, min_width=90) if follow_run else None
    if refresh is None:
        return model_a, model_b

    def on_refresh(config, a, b, request: gr.Request):
        v = ctx.visitor(request)
        opts = choices(v, config, a, b)
        return gr.update(choices=opts, value=shown_path(a, v)), gr.update(choices=opts, value=shown_path(b, v))

    def on_run(run_dir, config, a, request: gr.Request):
        v = ctx.visitor(request)
        b = run_or_output_model(run_dir if v.owns(run_dir) else None, config)
        opts = choices(v, config, a, b)
        return gr.update(choices=opts, value=shown_path(a, v)), gr.update(choices=opts, value=shown_path(b, v))

    hidden = {"api_visibility": "private"}
    refresh.click(on_refresh, [ctx.config, model_a, model_b], [model_a, model_b], **hidden)
    ctx.run.change(on_run, [ctx.run, ctx.config, model_a], [model_a, model_b], **hidden)
    ctx.run_ended.change(on_run, [ctx.run, ctx.config, model_a], [model_a, model_b], **hidden)
    return model_a, model_b

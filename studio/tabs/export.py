"""Export & runs tab: download a fine-tuned model as a zip, read its model card, push it to the Hub, and browse the
run history — picking a run makes it the studio's current run (Train redraws it, Compare's model B follows)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import gradio as gr
import pandas as pd

from core import compare as cmp
from core.config import load_config
from core.inspect import expected, user_message
from core.runs import CONFIG_FILE
from studio.plots import format_size
from studio.run_view import restore_run_data
from studio.style import nothing_yet

log = logging.getLogger("studio")
NO_MODEL = "*No model here yet: train a model first or pick a model directory.*"


def model_for(run_dir: str | None, config: dict[str, Any] | None) -> str:
    """The run's own model when it has one, else the config's output_dir."""
    return cmp.run_model_dir(run_dir) or str((config or {}).get("output_dir") or "outputs/embedding_model")


def model_card(model_dir: str | None) -> str:
    if not model_dir or not (Path(model_dir) / "modules.json").exists():
        return NO_MODEL
    text = cmp.read_model_card(model_dir)
    if not text:
        return "*This model has no README.md model card.*"
    if text.startswith("---"):  # the YAML front matter is for the Hub, not for reading
        end = text.find("\n---", 3)
        text = text[end + 4:] if end > 0 else text
    return text


def build_zip(model_dir: str, workspace: str | Path) -> tuple[str, str]:
    path = cmp.export_zip(model_dir, Path(workspace) / "exports")
    folder = cmp.zip_folder(path)
    return str(path), (f"Zipped {model_dir} → `{path.name}` ({format_size(path.stat().st_size)}). Unzip it to get the "
                       f"folder `{folder}/` and load it with `SentenceTransformer(\"{folder}\")`.")


def hub_push(model_dir: str, repo_id: str, token: str, private: bool) -> str:
    url = cmp.push_to_hub(model_dir, repo_id, token, private=private)
    return f"Pushed {model_dir} to [{repo_id}]({url})."


def history(runs_dir: str | Path) -> pd.DataFrame:
    df = cmp.runs_frame(runs_dir)
    for c in ("before", "after"):
        df[c] = df[c].map(lambda v: None if v is None or pd.isna(v) else round(float(v), 4))
    # The outcome first (before/after), the settings after it: the table is wider than the page.
    first = ["date", "run", "state", "dataset", "metric", "before", "after"]
    return df[first + [c for c in df.columns if c not in first and c != "path"]]


def open_run(run: str, runs_dir: str | Path) -> tuple[str, dict[str, Any] | None, str]:
    """(run_dir, its config as a dict or None when unreadable, a status line) for a run id or path."""
    if not run:
        raise cmp.CompareError("Pick a run first.")
    run_dir = Path(run) if Path(run).is_dir() else Path(runs_dir) / run
    if not (run_dir / "events.jsonl").exists():
        raise cmp.CompareError(f"No run '{run}' in {runs_dir}.")
    try:
        config = load_config(run_dir / CONFIG_FILE).to_dict()
        note = "its config is loaded into the Config tab"
    except Exception as exc:  # an old or hand-edited config: still show the run, keep the current config
        config, note = None, f"its config could not be loaded ({user_message(exc)})"
    model = cmp.run_model_dir(run_dir)
    return str(run_dir), config, (f"Opened run `{run_dir.name}`: the Train tab shows it, {note}"
                                  + (f", Compare's model B is `{model}`." if model else "; it has no model."))


def create_export_tab(ctx: Any) -> dict[str, Any]:
    cfg0 = ctx.config.value if isinstance(ctx.config.value, dict) else {}
    start = model_for(ctx.run.value, cfg0)
    gr.Markdown("### Model")
    with gr.Row():
        model_dir = gr.Dropdown(cmp.model_choices(ctx.runs_dir, start, None), value=start, allow_custom_value=True,
                                label="Fine-tuned model folder", scale=4)
        refresh_models = gr.Button("↻", size="sm", scale=0, min_width=50)
    with gr.Row():
        zip_btn = gr.Button("Build zip", variant="primary")
        zip_file = gr.File(label="Download", interactive=False)
    export_status = gr.Markdown()
    with gr.Accordion("Model card (README.md)", open=False):
        card = gr.Markdown(model_card(start))
    with gr.Accordion("Push to the Hugging Face Hub", open=False):
        with gr.Row():
            repo_id = gr.Textbox(label="Repo id", placeholder="your-name/my-embedding-model")
            token = gr.Textbox(label="Access token (write)", type="password")
            private = gr.Checkbox(label="Private", value=True)
        push_btn = gr.Button("Push")
        push_status = gr.Markdown()
    gr.Markdown("### Run history")
    with gr.Row():
        runs0 = history(ctx.runs_dir)
        run_pick = gr.Dropdown(list(runs0["run"]), value=None, label="Run", allow_custom_value=True, scale=4)
        open_btn = gr.Button("Open run", variant="primary", scale=1)
        refresh_runs = gr.Button("↻ runs", scale=0, min_width=80)
    runs_table = gr.Dataframe(runs0, interactive=False, wrap=True, max_height=420,
                              label="Runs (click a row to open it)")
    nothing_yet(runs_table, "No runs yet: start a training in the Train tab.")
    runs_status = gr.Markdown()

    def fail(exc: Exception) -> str:
        if not expected(exc):
            log.exception("export tab")
        msg = user_message(exc)
        gr.Warning(msg)
        return f"⚠️ {msg}"

    def on_zip(model_dir: str, progress: gr.Progress = gr.Progress()):  # noqa: B008
        progress(0.2, desc="Zipping the model")
        try:
            return build_zip(model_dir, ctx.workspace)
        except Exception as exc:
            return None, fail(exc)

    def on_push(model_dir: str, repo_id: str, token: str, private: bool) -> str:
        try:
            return hub_push(model_dir, repo_id, token, private)
        except Exception as exc:
            return fail(exc)

    def on_refresh_runs():
        df = history(ctx.runs_dir)
        return df, gr.update(choices=list(df["run"]))

    def on_open(run: str, dataset: dict | None):
        try:
            run_dir, config, line = open_run(run, ctx.runs_dir)
        except Exception as exc:
            return gr.skip(), gr.skip(), fail(exc), gr.skip()
        new_ds, _ = restore_run_data(run_dir, dataset, config or {})  # its data too, for Negatives and Compare
        if new_ds is not dataset and new_ds:
            line += f" Its dataset `{Path(new_ds['path']).name}` is selected again."
        return run_dir, config if config is not None else gr.skip(), line, new_ds if new_ds is not dataset else gr.skip()

    def on_select(df: pd.DataFrame, evt: gr.SelectData):
        row = evt.index[0] if isinstance(evt.index, (list, tuple)) else evt.index
        return df.iloc[int(row)]["run"] if df is not None and 0 <= int(row) < len(df) else gr.skip()

    def on_run(run_dir: str | None, config: dict[str, Any] | None, current: str):
        target = model_for(run_dir, config)
        opts = cmp.model_choices(ctx.runs_dir, target, (config or {}).get("output_dir"))
        df = history(ctx.runs_dir)  # a new training shows up in the history as soon as it starts
        pick = Path(run_dir).name if run_dir else None
        return (gr.update(choices=list(dict.fromkeys([*opts, current])), value=target), df,
                gr.update(choices=list(df["run"]), value=pick))

    hidden = {"api_visibility": "private"}
    zip_btn.click(on_zip, model_dir, [zip_file, export_status], api_name="export_zip")
    model_dir.change(model_card, model_dir, card, **hidden)
    refresh_models.click(lambda cur, config: gr.update(choices=cmp.model_choices(
        ctx.runs_dir, cur, (config or {}).get("output_dir"))), [model_dir, ctx.config], model_dir, **hidden)
    push_btn.click(on_push, [model_dir, repo_id, token, private], push_status, api_name="hub_push")
    refresh_runs.click(on_refresh_runs, None, [runs_table, run_pick], api_name="run_history")
    open_btn.click(on_open, [run_pick, ctx.dataset], [ctx.run, ctx.config, runs_status, ctx.dataset],
                   api_name="open_run")
    runs_table.select(on_select, runs_table, run_pick, **hidden).success(
        on_open, [run_pick, ctx.dataset], [ctx.run, ctx.config, runs_status, ctx.dataset], **hidden)
    ctx.run.change(on_run, [ctx.run, ctx.config, model_dir], [model_dir, runs_table, run_pick], **hidden)
    ctx.run_ended.change(on_run, [ctx.run, ctx.config, model_dir], [model_dir, runs_table, run_pick], **hidden)
    return {"export_model": model_dir, "runs_table": runs_table, "run_pick": run_pick, "export_status": export_status}

"""Export & runs tab: download a fine-tuned model as a zip, read its model card, push it to the Hub, and browse the
run history — picking a run makes it the studio's current run (Train redraws it, Compare's model B follows)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import gradio as gr
import pandas as pd

from core.config.schema import load_config
from core.errors import user_message
from core.export import archive as export
from core.export.run_zip import export_run
from core.models.load import is_model_dir
from core.models.onnx_export import export_onnx
from core.retrieval import compare as cmp
from core.runs.folders import CONFIG_FILE, runs_frame
from studio import errors, signin
from studio.files import hide_paths, shown_path
from studio.model_picker import own_output_dir, run_or_output_model
from studio.plots import format_size
from studio.run_view import restore_run_data
from studio.style import nothing_yet
from studio.tabs.runs_compare import create_runs_compare

NO_MODEL = "*No model here yet: train a model first or pick a model directory.*"
LINK_POLICY = (  # README, "Download links": the policy for a public Space
    "*Download links are private to you as long as you keep them so: anyone holding a link can download its file "
    "until it expires, an hour at most (build the file again for a new link).*"
)


def model_card(model_dir: str | None) -> str:
    if not model_dir or not is_model_dir(model_dir):
        return NO_MODEL
    text = export.read_model_card(model_dir)
    if not text:
        return "*This model has no README.md model card.*"
    if text.startswith("---"):  # the YAML front matter is for the Hub, not for reading
        end = text.find("\n---", 3)
        text = text[end + 4 :] if end > 0 else text
    return text


def build_zip(model_dir: str, workspace: str | Path, index_dir: str | None = None) -> tuple[str, str]:
    path = export.export_zip(model_dir, Path(workspace) / "exports", index_dir=(index_dir or "").strip() or None)
    folder = export.zip_folder(path)
    extra = f" with its document index in `{folder}/index/`" if (index_dir or "").strip() else ""
    return str(path), (
        f"Zipped {model_dir}{extra} → `{path.name}` ({format_size(path.stat().st_size)}). Unzip it to "
        f'get the folder `{folder}/` and load it with `SentenceTransformer("{folder}")`.'
    )


def build_onnx(model_dir: str, workspace: str | Path, int8: bool) -> tuple[str, str]:
    """(a zip to download, what was checked): an ONNX copy (and int8/) under workspace/exports, checked against
    torch, zipped with its tokenizer so it runs anywhere onnxruntime does."""
    name = Path(model_dir).parent.name if Path(model_dir).name == "model" else Path(model_dir).name
    out = Path(workspace) / "exports" / f"{name}_onnx"
    result = export_onnx(model_dir, out, quantize="int8" if int8 else None)
    target = export.zip_tree(out, out.with_suffix(".zip"))
    rows = ["| copy | file | cosine to torch (min) | size | texts/s (torch) |", "|---|---|---:|---:|---:|"]
    files = {"fp32": "model.onnx", "int8": "int8/model_int8.onnx"}
    for c in result.checks:
        rows.append(
            f"| {c['variant']} | `{files.get(c['variant'], c['variant'])}`"
            f" | {c['min_cosine']:.4f} {'ok' if c['passed'] else '**FAILED**'} | {c['size_mb']:.0f} MB"
            f" | {c['texts_per_s']:.0f} ({c['torch_texts_per_s']:.0f}) |"
        )
    head = "" if result.ok else "⚠️ A copy differs from the torch model: do not use it.\n\n"
    return str(target), (
        head
        + f"`{target.name}` ({format_size(target.stat().st_size)}): unzip it to get `{out.name}/` with `model.onnx`"
        + (", `int8/model_int8.onnx`" if int8 else "")
        + " and the tokenizer files; load it with onnxruntime (inputs: input_ids, attention_mask, mean pooling, "
        "normalised).\n\n" + "\n".join(rows)
    )


def build_run_zip(run_dir: str | Path, workspace: str | Path, weights: bool, public: bool) -> tuple[str, str]:
    """(the zip, a line saying what is in it) of one run, without its weights unless asked. A public visitor's copy
    names no server path: its texts pass through hide_paths (config, record, events, log, model card)."""
    rewrite = hide_paths if public else None
    path = export_run(run_dir, Path(workspace) / "exports", include_weights=weights, rewrite=rewrite)
    what = "the model's weights" if weights else "no weights (the config rebuilds them)"
    return str(path), (
        f"Zipped run `{Path(run_dir).name}` → `{path.name}` ({format_size(path.stat().st_size)}): its config, "
        f"record (command, versions, machine), events, metrics, mined negatives, log and model card; {what}."
    )


def hub_push(model_dir: str, repo_id: str, token: str, private: bool) -> str:
    url = export.push_to_hub(model_dir, repo_id, token, private=private)
    return f"Pushed {model_dir} to [{repo_id}]({url})."


def history(runs_dir: str | Path | None) -> pd.DataFrame:
    df = runs_frame(runs_dir or "")
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
    return (
        str(run_dir),
        config,
        (
            f"Opened run `{run_dir.name}`: the Train tab shows it, {note}"
            + (f", Compare's model B is `{model}`." if model else "; it has no model.")
        ),
    )


def create_export_tab(ctx: Any) -> dict[str, Any]:
    ui = _model_layout(ctx)
    _history_layout(ctx, ui)
    _wire_export(ctx, ui)
    _wire_model(ctx, ui)
    _wire_history(ctx, ui)
    return {
        "export_model": ui.model_dir,
        "runs_table": ui.runs_table,
        "run_pick": ui.run_pick,
        "export_status": ui.export_status,
    }


def _model_layout(ctx: Any) -> SimpleNamespace:
    """The model folder, zip and ONNX exports, its model card and the push to the Hub."""
    cfg0 = ctx.config.value if isinstance(ctx.config.value, dict) else {}
    start = run_or_output_model(ctx.run.value, cfg0)
    ui = SimpleNamespace()
    gr.Markdown("### Model")
    with gr.Row():
        ui.model_dir = gr.Dropdown(
            [] if ctx.public else cmp.model_choices(ctx.runs_dir, start, None),
            value=start,
            allow_custom_value=True,
            label="Fine-tuned model folder",
            scale=4,
        )
        ui.refresh_models = gr.Button("↻", size="sm", scale=0, min_width=50)
    with gr.Row():
        ui.zip_btn = gr.Button("Build zip", variant="primary")
        ui.zip_file = gr.File(label="Download", interactive=False)
    gr.Markdown(LINK_POLICY)
    ui.index_dir = gr.Textbox(label="Include a document index (optional: an index folder built with this model)")
    ui.export_status = gr.Markdown()
    with gr.Accordion("ONNX copy for CPU serving", open=False):
        with gr.Row():
            ui.onnx_int8 = gr.Checkbox(label="also int8 (quantised)", value=True)
            ui.onnx_btn = gr.Button("Export ONNX")
        ui.onnx_file = gr.File(label="Download the ONNX copy", interactive=False)
        ui.onnx_status = gr.Markdown()
    with gr.Accordion("Model card (README.md)", open=False):
        ui.card = gr.Markdown(model_card(start))
    with gr.Accordion("Push to the Hugging Face Hub", open=False):
        with gr.Row():
            ui.repo_id = gr.Textbox(label="Repo id", placeholder="your-name/my-embedding-model")
            signed = ctx.public and signin.availability()[0]
            ui.token = gr.Textbox(
                label="Access token (write)" + ("; not needed when signed in" if signed else ""), type="password"
            )
            ui.private = gr.Checkbox(label="Private", value=True)
        ui.push_btn = gr.Button("Push")
        ui.push_status = gr.Markdown()
    return ui


def _history_layout(ctx: Any, ui: SimpleNamespace) -> None:
    """The run history: a run picker, Open and the table of runs."""
    gr.Markdown("### Run history")
    with gr.Row():
        runs0 = history(None if ctx.public else ctx.runs_dir)  # a public visitor's own runs come with the page
        ui.run_pick = gr.Dropdown(list(runs0["run"]), value=None, label="Run", allow_custom_value=True, scale=4)
        ui.open_btn = gr.Button("Open run", variant="primary", scale=1)
        ui.refresh_runs = gr.Button("↻ runs", scale=0, min_width=80)
    ui.runs_table = gr.Dataframe(
        runs0, interactive=False, wrap=True, max_height=420, label="Runs (click a row to open it)"
    )
    nothing_yet(ui.runs_table, "No runs yet: start a training in the Train tab.")
    ui.runs_status = gr.Markdown()
    with gr.Accordion("Download run (to share or reproduce it)", open=False):
        with gr.Row():
            ui.run_weights = gr.Checkbox(label="include the model's weights", value=False)
            ui.run_zip_btn = gr.Button("Download run")
        ui.run_zip = gr.File(label="The run's zip", interactive=False)
        ui.run_zip_status = gr.Markdown()
    ui.compare_pick = create_runs_compare(ctx, list(runs0["run"]))["runs"]


def _fail(exc: Exception, public: bool = False) -> str:
    return errors.warn(exc, "export tab", public)


def _wire_export(ctx: Any, ui: SimpleNamespace) -> None:
    """`export_zip` and `export_onnx`, each on a folder this visitor may use."""

    def on_zip(
        model_dir: str,
        index: str | None = None,
        request: gr.Request | None = None,
        progress: gr.Progress = gr.Progress(),
    ):  # noqa: B008
        progress(0.2, desc="Zipping the model")
        try:
            v = ctx.visitor(request)
            folder = str(v.path(model_dir, "model folder")) if model_dir else model_dir
            index = str(v.path(index, "index folder")) if (index or "").strip() else ""
            v.check_disk()
            with ctx.heavy(request):
                path, text = build_zip(folder, v.root, index)
                return path, hide_paths(text, ctx.public)
        except Exception as exc:
            return None, _fail(exc, ctx.public)

    def on_onnx(model_dir: str, int8: bool, request: gr.Request, progress: gr.Progress = gr.Progress()):  # noqa: B008
        progress(0.2, desc="Exporting and checking against torch")
        try:
            v = ctx.visitor(request)
            folder = str(v.path(model_dir, "model folder")) if model_dir else model_dir
            v.check_disk()
            with ctx.heavy(request):
                path, text = build_onnx(folder, v.root, int8)
                return path, hide_paths(text, ctx.public)
        except Exception as exc:
            return None, _fail(exc, ctx.public)

    ui.zip_btn.click(on_zip, [ui.model_dir, ui.index_dir], [ui.zip_file, ui.export_status], api_name="export_zip")
    ui.onnx_btn.click(on_onnx, [ui.model_dir, ui.onnx_int8], [ui.onnx_file, ui.onnx_status], api_name="export_onnx")


def _wire_model(ctx: Any, ui: SimpleNamespace) -> None:
    """The model card of the picked folder, re-listing the models, and `hub_push`."""

    def on_push(
        model_dir: str,
        repo_id: str,
        token: str,
        private: bool,
        request: gr.Request,
        profile: gr.OAuthProfile | None = None,
        oauth_token: gr.OAuthToken | None = None,
    ) -> str:
        try:
            folder = str(ctx.visitor(request).path(model_dir, "model folder")) if model_dir else model_dir
            # a signed-in visitor's own token and namespace unless they typed others; never the server's token
            token, repo_id = signin.push_credentials(token, repo_id, folder, profile, oauth_token)
            if not token:
                raise export.HubError(signin.no_token_message())
            return hide_paths(hub_push(folder, repo_id, token, private), ctx.public)
        except Exception as exc:
            return _fail(exc, ctx.public)

    def on_refresh_models(cur: str, config: dict[str, Any] | None, request: gr.Request):
        v = ctx.visitor(request)
        opts = cmp.model_choices(v.runs_dir, cur, own_output_dir(v, config))
        return gr.update(choices=list(dict.fromkeys(shown_path(o, v) for o in opts)))

    def on_model(model_dir: str | None, request: gr.Request) -> str:
        try:
            return model_card(str(ctx.visitor(request).path(model_dir, "model folder")) if model_dir else None)
        except Exception as exc:
            return _fail(exc, ctx.public)

    hidden = {"api_visibility": "private"}
    ui.model_dir.change(on_model, ui.model_dir, ui.card, **hidden)
    ui.refresh_models.click(on_refresh_models, [ui.model_dir, ctx.config], ui.model_dir, **hidden)
    ui.push_btn.click(on_push, [ui.model_dir, ui.repo_id, ui.token, ui.private], ui.push_status, api_name="hub_push")


def _wire_history(ctx: Any, ui: SimpleNamespace) -> None:
    """`run_history` and `open_run` (also by clicking a row), and following the shown run."""

    def on_refresh_runs(request: gr.Request):
        df = history(ctx.visitor(request).runs_dir)
        return df, gr.update(choices=list(df["run"])), gr.update(choices=list(df["run"]))

    def on_open(run: str, dataset: dict | None, request: gr.Request):
        v = ctx.visitor(request)
        try:
            run_dir, config, line = open_run(str(v.run(run) or ""), v.runs_dir)
        except Exception as exc:
            return {ui.runs_status: _fail(exc, ctx.public)}
        new_ds, _ = restore_run_data(run_dir, dataset, config or {})  # its data too, for Negatives and Compare
        if new_ds is not dataset and new_ds:
            line += f" Its dataset `{Path(new_ds['path']).name}` is selected again."
        out = {ctx.run: run_dir, ui.runs_status: hide_paths(line, ctx.public)}
        if config is not None:
            out[ctx.config] = config
        if new_ds is not dataset:
            out[ctx.dataset] = new_ds
        return out

    def on_select(df: pd.DataFrame, evt: gr.SelectData):
        row = evt.index[0] if isinstance(evt.index, (list, tuple)) else evt.index
        return df.iloc[int(row)]["run"] if df is not None and 0 <= int(row) < len(df) else gr.skip()

    def on_run(run_dir: str | None, config: dict[str, Any] | None, current: str, request: gr.Request):
        v = ctx.visitor(request)
        target = run_or_output_model(run_dir if v.owns(run_dir) else None, config)
        opts = cmp.model_choices(v.runs_dir, target, own_output_dir(v, config))
        df = history(v.runs_dir)  # a new training shows up in the history as soon as it starts
        pick = Path(run_dir).name if run_dir else None
        shown = [shown_path(o, v) for o in [*opts, current]]
        return (
            gr.update(choices=list(dict.fromkeys(shown)), value=shown_path(target, v)),
            df,
            gr.update(choices=list(df["run"]), value=pick),
            gr.update(choices=list(df["run"])),
        )

    def on_run_zip(run: str, weights: bool, request: gr.Request, progress: gr.Progress = gr.Progress()):  # noqa: B008
        """API `/download_run`. Input: `run`, a run id of this visitor; `weights`, include the saved model.
        Output: (the zip, a line saying what it holds) or (None, why not)."""
        progress(0.2, desc="Zipping the run")
        try:
            v = ctx.visitor(request)
            if not (run or "").strip():
                raise cmp.CompareError("Pick a run first (Run, above).")
            v.check_disk()
            with ctx.heavy(request):
                path, text = build_run_zip(v.run(run), v.root, bool(weights), ctx.public)
                return path, hide_paths(text, ctx.public)
        except Exception as exc:
            return None, _fail(exc, ctx.public)

    hidden = {"api_visibility": "private"}
    ui.run_zip_btn.click(
        on_run_zip, [ui.run_pick, ui.run_weights], [ui.run_zip, ui.run_zip_status], api_name="download_run"
    )
    opened = [ctx.run, ctx.config, ui.runs_status, ctx.dataset]
    ui.refresh_runs.click(on_refresh_runs, None, [ui.runs_table, ui.run_pick, ui.compare_pick], api_name="run_history")
    ui.open_btn.click(on_open, [ui.run_pick, ctx.dataset], opened, api_name="open_run")
    ui.runs_table.select(on_select, ui.runs_table, ui.run_pick, **hidden).success(
        on_open, [ui.run_pick, ctx.dataset], opened, **hidden
    )
    followed = [ui.model_dir, ui.runs_table, ui.run_pick, ui.compare_pick]
    ctx.run.change(on_run, [ctx.run, ctx.config, ui.model_dir], followed, **hidden)
    ctx.run_ended.change(on_run, [ctx.run, ctx.config, ui.model_dir], followed, **hidden)

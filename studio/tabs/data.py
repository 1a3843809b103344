"""Data tab: upload or pick a dataset, see its validation report, statistics, preview and token-length histograms.

A file is validated where Gradio put it and copied into workspace/uploads/<session>/ only when it is valid, so a
refused file can never overwrite (or replace) the last valid dataset, which stays selected in ctx.dataset.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import gradio as gr
import pandas as pd

from core.data.validate import ValidationReport, read_texts, token_lengths
from studio.context import BusyAction, StudioContext, Visitor
from studio.datasets import (
    DEFAULT_SAMPLE,
    SAMPLES_DIR,
    api_report,
    select_dataset,
    validate,
)
from studio.files import sanitise_name, short_path, upload_dir, upload_limit_mb, upload_problem
from studio.plots import similarity_figure, token_length_figure

DATA_TYPES = [".jsonl", ".ndjson", ".json", ".csv", ".tsv", ".parquet"]
PREVIEW_ROWS = 20


# ---------------------------------------------------------------- rendering a report


def _issues_frame(report: ValidationReport) -> pd.DataFrame:
    rows = [{"line": i.line, "field": i.field or "", "message": i.message} for i in report.errors]
    return pd.DataFrame(rows, columns=["line", "field", "message"])


def _warnings_md(report: ValidationReport) -> str:
    if not report.warnings:
        return ""
    return "**Warnings**\n\n" + "\n".join(f"- {i}" for i in report.warnings)


def _stats_md(stats: dict[str, Any]) -> str:
    chars, tokens = stats.get("char_lengths", {}), stats.get("token_lengths", {})
    if not chars:
        return ""
    lines = [
        "| field | distinct | chars p50 / p95 / max | tokens p50 / p95 / max | over max_seq_length |",
        "|---|---:|---:|---:|---:|",
    ]
    for col, c in chars.items():
        t = tokens.get(col)
        tok = f"{t['p50']} / {t['p95']} / {t['max']}" if t else "–"
        over = "–" if not t or t.get("over_max") is None else str(t["over_max"])
        lines.append(
            f"| {col} | {stats.get(f'distinct_{col}', '')} | {c['p50']} / {c['p95']} / {c['max']} | {tok} | {over} |"
        )
    extra = f"\n\nDuplicate rows: {stats.get('duplicate_rows', 0)}"
    if "similarity_histogram" in stats:
        extra += f" · mean similarity {stats['similarity_histogram']['mean']}"
    return "**Statistics**\n\n" + "\n".join(lines) + extra


def view_values(report: ValidationReport, tokenizer: Any, max_seq_length: int | None) -> dict[str, Any]:
    """Plain values for the report view; `similarity` is None when the data is not scored pairs."""
    df = report.data
    preview = pd.DataFrame()
    lengths: dict[str, list[int]] = {}
    sim = None
    note = "no tokenizer available: token lengths not computed" if df is not None else "refused: nothing to draw"
    if df is not None and len(df):
        preview = df.head(PREVIEW_ROWS).rename(columns={"_line": "line"})
        preview = preview[["line", *[c for c in preview.columns if c != "line"]]] if "line" in preview else preview
        if tokenizer is not None:
            lengths = {c: token_lengths(df, tokenizer, c) for c in df.columns if c not in ("similarity", "_line")}
        if report.format == "scored":
            sim = similarity_figure(df["similarity"].tolist())
    return {
        "errors": _issues_frame(report),
        "warnings": _warnings_md(report),
        "stats": _stats_md(report.stats),
        "preview": preview,
        "similarity": sim,
        "tokens": token_length_figure(lengths, max_seq_length, note),
    }


def render(report: ValidationReport, tokenizer: Any, max_seq_length: int | None, message: str) -> tuple:
    """Updates for (status, errors, warnings, stats, preview, token plot, similarity plot)."""
    v = view_values(report, tokenizer, max_seq_length)
    return (
        message,
        gr.update(value=v["errors"], visible=bool(len(v["errors"]))),
        v["warnings"],
        v["stats"],
        gr.update(value=v["preview"], visible=report.data is not None, column_widths=preview_widths(v["preview"])),
        v["tokens"],
        gr.update(value=v["similarity"], visible=v["similarity"] is not None),
    )


def preview_widths(preview: pd.DataFrame) -> list[str] | None:
    """Column widths that fit the page: narrow line and score columns, the rest shared by the texts' typical length,
    so a long document wraps inside the table instead of running off its right edge."""
    if preview is None or preview.empty:
        return None
    narrow = {"line", "similarity"}
    texts = [c for c in preview.columns if c not in narrow]
    typical = {c: max(20.0, float(preview[c].astype(str).str.len().median())) for c in texts}
    room = 100 - 8 * (len(preview.columns) - len(texts))
    total = sum(typical.values()) or 1.0
    share = {c: max(0.2, typical[c] / total) for c in texts}  # a short field still gets a fifth of the room
    scale = room / sum(share.values())
    return [("8%" if c in narrow else f"{share[c] * scale:.0f}%") for c in preview.columns]


def _sample_choices() -> list[str]:
    return sorted(p.name for p in SAMPLES_DIR.iterdir() if p.suffix.lower() in DATA_TYPES)


# ---------------------------------------------------------------- the tab


def create_data_tab(ctx: StudioContext) -> dict[str, Any]:
    """The Data tab. Also registers the `validate_dataset` and `current_dataset` API endpoints."""
    ui = _inputs_layout(upload_limit_mb(ctx))
    _report_layout(ctx, ui)
    _wire_dataset(ctx, ui)
    _wire_selected_elsewhere(ctx, ui)
    _wire_corpus(ctx, ui)
    _wire_api(ctx, ui)
    return {
        "upload": ui.upload,
        "sample": ui.sample,
        "use_sample": ui.use_sample,
        "format": ui.fmt,
        "corpus": ui.corpus,
        "status": ui.status,
        "errors": ui.errors,
        "preview": ui.preview,
        "token_plot": ui.tok_plot,
    }


def _inputs_layout(limit_mb: float) -> SimpleNamespace:
    """The dataset upload, the bundled samples, the format and the optional corpus."""
    gr.Markdown(
        "Upload training data (JSONL, JSON, CSV, TSV or Parquet) or start from a bundled sample. "
        "Pairs need `query`/`document`, triplets `query`/`positive`/`negative`, scored pairs "
        "`doc1`/`doc2`/`similarity`."
    )
    with gr.Row():
        with gr.Column(scale=2):
            upload = gr.File(label=f"Dataset file (max {limit_mb:g} MB)", file_types=DATA_TYPES, type="filepath")
        with gr.Column(scale=1):
            sample = gr.Dropdown(_sample_choices(), value=DEFAULT_SAMPLE.name, label="Bundled sample")
            use_sample = gr.Button("Use sample")
            fmt = gr.Dropdown(
                ["auto", "pairs", "triplets", "scored"],
                value="auto",
                label="Format",
                info="auto = detect from the column names",
            )
        with gr.Column(scale=1):
            corpus = gr.File(
                label=f"Optional corpus (extra documents for mining and evaluation; max {limit_mb:g} MB)",
                file_types=DATA_TYPES + [".txt"],
                type="filepath",
            )
            corpus_status = gr.Markdown("No extra corpus: the dataset's own documents are used.")
    return SimpleNamespace(
        upload=upload, sample=sample, use_sample=use_sample, fmt=fmt, corpus=corpus, corpus_status=corpus_status
    )


def _initial_view(ctx: StudioContext) -> tuple[dict[str, Any], str]:
    """(view values, status line) of the start-up dataset. Its report is drawn at build time, so the page opens on
    it without a round trip."""
    initial = ctx.dataset.value
    init: dict[str, Any] = {
        "errors": None,
        "warnings": "",
        "stats": "",
        "preview": None,
        "tokens": None,
        "similarity": None,
    }
    init_msg = "No dataset selected yet."
    if initial:
        report, tok = validate(initial["path"], ctx.config.value)
        init = view_values(report, tok, ctx.config.value.get("max_seq_length"))
        init_msg = f"✅ **`{Path(initial['path']).name}`** selected: {report.format}, {report.rows} rows."
    return init, init_msg


def _report_layout(ctx: StudioContext, ui: SimpleNamespace) -> None:
    """The report view (status, errors, warnings, statistics, plots, preview) into `ui`: `ui.view` in the order
    `render` returns, and `ui.shown`, the dataset this view draws."""
    init, init_msg = _initial_view(ctx)
    ui.status = gr.Markdown(init_msg)
    ui.errors = gr.Dataframe(
        headers=["line", "field", "message"], label="Errors", interactive=False, visible=False, wrap=True
    )
    ui.warnings = gr.Markdown(init["warnings"])
    ui.stats = gr.Markdown(init["stats"])
    with gr.Row():
        ui.tok_plot = gr.Plot(init["tokens"], label="Token lengths")
        ui.sim_plot = gr.Plot(init["similarity"], label="Similarity", visible=init["similarity"] is not None)
    ui.preview = gr.Dataframe(
        init["preview"],
        label=f"Preview (first {PREVIEW_ROWS} rows)",
        interactive=False,
        wrap=True,
        max_height=400,
        column_widths=preview_widths(init["preview"]),
    )
    ui.view = [ui.status, ui.errors, ui.warnings, ui.stats, ui.preview, ui.tok_plot, ui.sim_plot]
    initial = ctx.dataset.value
    ui.shown = gr.State(initial["path"] if initial else None)  # the dataset this tab's view draws


def _choose(
    ctx: StudioContext, path: str, fmt_value: str | None, dataset: dict | None, config: dict, request: gr.Request
) -> tuple:
    """`select_dataset` for this visitor: their upload folder and limits, one heavy action at a time."""
    v = ctx.visitor(request)
    with ctx.heavy(request):
        return select_dataset(
            path,
            Path(path).name,
            fmt_value,
            dataset,
            config,
            upload_dir(v),
            upload_problem(ctx, v, path),
            ctx.limits.dataset_rows if v.public else None,
        )


def _wire_dataset(ctx: StudioContext, ui: SimpleNamespace) -> None:
    """Upload and Use sample: each validates the file and draws its report."""
    view, shown = ui.view, ui.shown

    def on_file(path: str | None, fmt_value: str, dataset: dict | None, config: dict, request: gr.Request) -> dict:
        if not path:
            return gr.skip()
        try:
            report, new_ds, new_cfg, msg, tok = _choose(ctx, path, fmt_value, dataset, config, request)
        except BusyAction as exc:
            gr.Warning(str(exc))
            return gr.skip()
        if new_ds is dataset:
            gr.Warning(f"{Path(path).name} was refused: see the errors below. The previous dataset stays selected.")
            # Its errors, and nothing else: the previous dataset's statistics, preview and plots are cleared (under
            # this file's errors they would read as its own), and the upload box is emptied so that it does not look
            # selected either. Use sample or a reload draws the selected dataset again.
            errors_df = _issues_frame(report)
            return {
                ui.status: msg,
                ui.errors: gr.update(
                    value=errors_df, visible=bool(len(errors_df)), label=f"Errors in {Path(path).name}"
                ),
                ui.warnings: "",
                ui.stats: "",
                ui.preview: gr.update(value=None, visible=False),
                ui.tok_plot: token_length_figure({}, None, f"{Path(path).name} was refused: nothing to draw"),
                ui.sim_plot: gr.update(value=None, visible=False),
                shown: None,
                ctx.dataset: new_ds,
                ctx.config: new_cfg,
                ui.upload: None,
            }
        drawn = dict(zip(view, render(report, tok, config.get("max_seq_length"), msg), strict=True))
        return drawn | {ctx.dataset: new_ds, ctx.config: new_cfg, shown: new_ds["path"]}

    def on_sample(name: str, fmt_value: str, dataset: dict | None, config: dict) -> dict:
        path = SAMPLES_DIR / sanitise_name(name)  # a name from the dropdown; sanitised so it cannot leave SAMPLES
        report, new_ds, new_cfg, msg, tok = select_dataset(path, path.name, fmt_value, dataset, config, None)
        drawn = dict(zip(view, render(report, tok, config.get("max_seq_length"), msg), strict=True))
        return drawn | {ctx.dataset: new_ds, ctx.config: new_cfg} | ({shown: new_ds["path"]} if new_ds else {})

    outs = [*view, ctx.dataset, ctx.config]
    ui.upload.upload(
        on_file, [ui.upload, ui.fmt, ctx.dataset, ctx.config], [*outs, ui.upload, shown], api_visibility="private"
    )
    ui.use_sample.click(
        on_sample, [ui.sample, ui.fmt, ctx.dataset, ctx.config], [*outs, shown], api_visibility="private"
    )


def _wire_selected_elsewhere(ctx: StudioContext, ui: SimpleNamespace) -> None:
    """The session's dataset changed elsewhere: the view follows it."""
    view, shown = ui.view, ui.shown

    def on_dataset(dataset: dict | None, shown_path: str | None, config: dict) -> dict:
        """The session's dataset changed elsewhere (a reload or Open run selected a run's data): draw it."""
        if not dataset or dataset["path"] == shown_path:
            return gr.skip()
        report, tok = validate(dataset["path"], config, dataset.get("format"))
        why = "as you left it" if dataset.get("origin") == "restored" else "the data of the run shown in the Train tab"
        msg = f"✅ **`{Path(dataset['path']).name}`** selected: {report.format}, {report.rows} rows ({why})."
        return dict(zip(view, render(report, tok, config.get("max_seq_length"), msg), strict=True)) | {
            shown: dataset["path"]
        }

    ctx.dataset.change(
        on_dataset, [ctx.dataset, shown, ctx.config], [*view, shown], api_visibility="private", show_progress="hidden"
    )


def attach_corpus(ctx: StudioContext, v: Visitor, path: str) -> tuple[str | None, Path | None, int]:
    """(problem, stored file, distinct texts): the corpus file checked against the limits in force and, when it
    passes, copied into the visitor's folder. The Data tab's corpus box and `/attach_corpus` share it."""
    problem, n = upload_problem(ctx, v, path), 0
    if problem is None:
        try:
            n = len(read_texts(path))
        except ValueError as exc:
            problem = str(exc).replace(str(Path(path).parent) + "/", "")
        if problem is None and v.public and n > ctx.limits.corpus_docs:
            problem = f"{n:,} documents: this server takes at most {ctx.limits.corpus_docs:,} per corpus"
    if problem:
        return problem, None, n
    final = upload_dir(v, "corpus") / sanitise_name(Path(path).name)
    shutil.copyfile(path, final)
    return None, final, n


def _wire_corpus(ctx: StudioContext, ui: SimpleNamespace) -> None:
    """The optional corpus: checked, copied into the visitor's folder and set as the config's corpus_path."""
    corpus, corpus_status = ui.corpus, ui.corpus_status

    def on_corpus(path: str | None, config: dict, request: gr.Request) -> dict:
        if not path:
            return {
                corpus_status: "No extra corpus: the dataset's own documents are used.",
                ctx.config: dict(config, corpus_path=None),
            }
        problem, final, n = attach_corpus(ctx, ctx.visitor(request), path)
        if problem:
            gr.Warning(f"Corpus refused: {problem}")
            kept = (
                f" The corpus `{Path(config['corpus_path']).name}` stays selected." if config.get("corpus_path") else ""
            )
            # the box empties: nothing refused looks chosen
            return {corpus_status: f"❌ Corpus refused: {problem}{kept}", ctx.config: config, corpus: None}
        return {
            corpus_status: f"✅ Corpus `{final.name}`: {n} distinct texts.",
            ctx.config: dict(config, corpus_path=short_path(final)),
        }

    def on_corpus_cleared(config: dict, request: gr.Request) -> dict:
        return on_corpus(None, config, request)

    def on_config(config: dict, line: str) -> Any:
        """A corpus set elsewhere (the visitor's saved state, an opened run) is named here too."""
        name = Path(str(config.get("corpus_path") or "")).name
        return f"✅ Corpus `{name}`." if name and f"`{name}`" not in (line or "") else gr.skip()

    ctx.config.change(
        on_config, [ctx.config, corpus_status], [corpus_status], api_visibility="private", show_progress="hidden"
    )
    # upload and clear, not change: emptying a refused file's box must not drop the corpus that stays selected
    corpus.upload(on_corpus, [corpus, ctx.config], [corpus_status, ctx.config, corpus], api_visibility="private")
    corpus.clear(on_corpus_cleared, [ctx.config], [corpus_status, ctx.config, corpus], api_visibility="private")


def _wire_api(ctx: StudioContext, ui: SimpleNamespace) -> None:
    """The `validate_dataset`, `current_dataset` and `attach_corpus` endpoints for scripts, on hidden components."""
    shown = ui.shown
    with gr.Column(visible=False):
        api_file = gr.File(type="filepath")
        api_out = gr.JSON()
        api_validate = gr.Button()
        api_current = gr.Button()
        api_corpus = gr.Button()

    def validate_dataset(file: str | None, dataset: dict | None, config: dict, request: gr.Request) -> dict:
        """API `/validate_dataset`. Input: a file (`gradio_client.handle_file(path)`).
        Output: the validation report as JSON: {dataset_path, format, rows, ok, errors: [{line, field, message,
        row_based}], warnings: [...], stats, selected: bool, message}. A valid file becomes this session's dataset
        (used by `/start_training`); an invalid one is refused and the previous dataset stays selected."""
        if not file:
            return {api_out: {"ok": False, "selected": False, "message": "no file given", "errors": []}}
        try:
            report, new_ds, new_cfg, msg, _ = _choose(ctx, file, None, dataset, config, request)
        except BusyAction as exc:
            return {api_out: {"ok": False, "selected": False, "message": str(exc), "errors": []}}
        out = api_report(report.to_dict()) | {"selected": new_ds is not dataset, "message": msg.replace("*", "")}
        # An API session draws no view: marking the file as shown spares a second validation by on_dataset.
        return {api_out: out, ctx.dataset: new_ds, ctx.config: new_cfg} | ({shown: new_ds["path"]} if new_ds else {})

    def current_dataset(dataset: dict | None) -> dict:
        """API `/current_dataset`. No input. Output: this session's selected dataset: {dataset_path, format, rows,
        ok, errors, warnings, stats} (its validation report), or {} when none is selected."""
        return api_report(dataset["report"]) if dataset else {}

    api_validate.click(
        validate_dataset,
        [api_file, ctx.dataset, ctx.config],
        [api_out, ctx.dataset, ctx.config, shown],
        api_name="validate_dataset",
    )
    api_current.click(current_dataset, [ctx.dataset], [api_out], api_name="current_dataset")

    def corpus_api(file: str | None, config: dict, request: gr.Request) -> dict:
        """API `/attach_corpus`. Input: a file (`handle_file(path)`), or None to use the dataset's own documents.
        Output: {ok, corpus, documents, message}. A refused file leaves the session's corpus as it was."""
        if not file:
            return {api_out: {"ok": True, "corpus": None, "documents": 0, "message": "no extra corpus"}} | {
                ctx.config: dict(config, corpus_path=None)
            }
        problem, final, n = attach_corpus(ctx, ctx.visitor(request), file)
        if problem:
            kept = Path(config["corpus_path"]).name if config.get("corpus_path") else None
            return {api_out: {"ok": False, "corpus": kept, "documents": 0, "message": f"corpus refused: {problem}"}}
        out = {"ok": True, "corpus": final.name, "documents": n, "message": f"corpus {final.name}: {n} distinct texts"}
        return {api_out: out, ctx.config: dict(config, corpus_path=short_path(final))}

    api_corpus.click(corpus_api, [api_file, ctx.config], [api_out, ctx.config], api_name="attach_corpus")

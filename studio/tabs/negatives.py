"""Negatives tab: inspect the hard negatives mined for a run, exclude bad ones from the next training, and
preview other mining thresholds from the cached embeddings. Every handler here is a plain function over
`core.retrieval.negatives`; the gradio wiring is at the bottom."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import gradio as gr
import pandas as pd
import plotly.graph_objects as go

from core.config.schema import EmbedConfig, build_config, load_config
from core.errors import user_message
from core.retrieval import negatives as ins
from core.runs.folders import CONFIG_FILE
from studio import errors
from studio.files import hide_paths
from studio.run_view import data_line
from studio.style import nothing_yet

MAX_ROWS = 500  # shown at once: a browser table of thousands of long texts is slow; the filter narrows it
SHOWN = ["exclude", "query", "positive", "negative", "rank", "positive_score", "negative_score", "gap", "suspected"]
# exclude, query, positive, negative, 4 scores, suspected: the three texts share the width, all columns in view
WIDTHS = ["6%", "14%", "20%", "20%", "6%", "10%", "10%", "6%", "8%"]  # scores wide enough for their headers
DTYPES = ["bool", "str", "str", "str", "number", "number", "number", "number", "bool"]
MINING_DEFAULT = EmbedConfig().mining.num_negatives
EMPTY: dict[str, Any] = {"run": None, "rows": None, "stats": {}, "config": None, "preview": False}


def _table(rows: pd.DataFrame | None, excluded: set[tuple[str, str]]) -> pd.DataFrame:
    if rows is None or rows.empty:
        return pd.DataFrame(columns=SHOWN)
    out = rows.head(MAX_ROWS).rename(columns={"suspected_false_negative": "suspected"})
    out = out.assign(exclude=[(q, n) in excluded for q, n in zip(out["query"], out["negative"], strict=True)])
    for c in ("positive_score", "negative_score", "gap"):
        out[c] = out[c].round(4)
    return out[SHOWN]


def score_histogram(rows: pd.DataFrame | None, title: str = "Positive vs negative scores") -> go.Figure:
    """Overlaid histograms: a good mining run keeps the two humps apart; overlap means likely false negatives."""
    fig = go.Figure()
    if rows is not None and not rows.empty:
        pos = rows.drop_duplicates(["query", "positive"])["positive_score"]
        fig.add_histogram(x=pos, name="positive", opacity=0.6, nbinsx=40, marker_color="#2a9d8f")
        fig.add_histogram(x=rows["negative_score"], name="negative", opacity=0.6, nbinsx=40, marker_color="#e76f51")
    fig.update_layout(
        barmode="overlay",
        title=title,
        xaxis_title="cosine similarity to the query",
        yaxis_title="count",
        height=320,
        margin={"l": 40, "r": 10, "t": 40, "b": 40},
    )
    return fig


def _summary(state: dict[str, Any], shown: int, total: int) -> str:
    s = state.get("stats") or {}
    where = (
        "Preview (not saved)"
        if state.get("preview")
        else f"Run `{Path(state['run']).name}`"
        if state.get("run")
        else "Nothing loaded"
    )
    return (
        f"**{where}** · {s.get('negatives', total)} negatives for {s.get('rows', '?')} rows · skipped by margin "
        f"{s.get('skipped_by_margin', '?')} · rows short of negatives {s.get('rows_without_enough_negatives', '?')}"
        f" · suspected false negatives {s.get('suspected_false_negatives', '?')} · showing {shown} of {total}"
    )


def view(
    state: dict[str, Any], text: str, suspects_only: bool, sort_by: str, config: dict[str, Any] | None
) -> tuple[pd.DataFrame, str]:
    """The filtered, sorted table (exclusions ticked) and a one-line summary."""
    rows = state.get("rows")
    if rows is None:
        return _table(None, set()), "No mined negatives loaded: pick a run or press **Mine now**."
    shown = ins.filter_mined(rows, text, suspects_only, sort_by)
    return _table(shown, ins.excluded_pairs(config)), _summary(state, min(len(shown), MAX_ROWS), len(shown))


def load_run(run_dir: str | None) -> dict[str, Any]:
    """The state for a run's mined rows; raises InspectError when it has none."""
    if not run_dir:
        raise ins.InspectError("No run selected: train, pick a run in Export & runs, or press 'Mine now'.")
    rows, stats = ins.load_mined(run_dir)
    cfg = load_config(Path(run_dir) / CONFIG_FILE).to_dict()  # re-mining starts from the run's own settings
    return {"run": str(run_dir), "rows": rows, "stats": stats, "config": cfg, "preview": False}


def mine_now(config: dict[str, Any], dataset: dict[str, Any] | None, runs_dir: str | Path) -> dict[str, Any]:
    """Mine the current dataset with the current config into a new "mine" run, without training."""
    cfg = ins.effective_config(config, dataset)
    run_dir, result = ins.mine_run(cfg, runs_dir)
    if result is None:
        raise ins.InspectError(f"Nothing was mined into {run_dir}: check the mining settings.")
    return {"run": str(run_dir), "rows": result.rows, "stats": result.stats, "config": cfg.to_dict(), "preview": False}


def save_exclusions(table: pd.DataFrame, config: dict[str, Any], workspace: str | Path) -> tuple[dict[str, Any], str]:
    """Ticked rows of the shown table are excluded from the next training, unticked shown rows included again."""
    if table is None or table.empty:
        raise ins.InspectError("No rows shown: load mined negatives first.")
    missing = [c for c in ("exclude", "query", "negative") if c not in table.columns]
    if missing:
        raise ins.InspectError(f"The table has no {', '.join(missing)} column: load mined negatives first.")
    ticked = table["exclude"].astype(str).str.lower().isin(["true", "1"])
    pairs = list(zip(table["query"], table["negative"], strict=True))
    add = [p for p, t in zip(pairs, ticked, strict=True) if t]
    remove = [p for p, t in zip(pairs, ticked, strict=True) if not t]
    new, path, total = ins.set_exclusions(config, workspace, add, remove)
    return new, (
        f"{len(add)} shown negatives excluded; {total} in `{path}` (mining.exclude_path). The next "
        "training skips them and mines the next candidate instead."
    )


def clear_exclusions(config: dict[str, Any]) -> tuple[dict[str, Any], str]:
    new = build_config(config).to_dict()
    new["mining"]["exclude_path"] = None
    return new, "Exclusions switched off for the next training (the file is kept)."


def thresholds(
    margin: float | None, margin_type: str, range_min: float, range_max: float, num_negatives: float
) -> dict[str, Any]:
    return {
        "margin": None if margin is None or margin == "" else float(margin),
        "margin_type": margin_type,
        "range_min": int(range_min),
        "range_max": int(range_max),
        "num_negatives": int(num_negatives),
    }


def preview(
    state: dict[str, Any], config: dict[str, Any], dataset: dict[str, Any] | None, settings: dict[str, Any]
) -> tuple[dict[str, Any], pd.DataFrame]:
    """Re-mine with other thresholds (cached embeddings: seconds) -> (preview state, stats comparison)."""
    base = build_config(state["config"]) if state.get("config") else ins.effective_config(config, dataset)
    exclude = ((config or {}).get("mining") or {}).get("exclude_path")  # the exclusions as they are now
    cfg = ins.with_thresholds(base, **settings, exclude_path=exclude)
    result = ins.remine(cfg)
    new = {
        "run": state.get("run"),
        "rows": result.rows,
        "stats": result.stats,
        "config": cfg.to_dict(),
        "preview": True,
    }
    return new, ins.stats_preview(state.get("stats") or {}, result.stats)


def use_thresholds(config: dict[str, Any], settings: dict[str, Any]) -> tuple[dict[str, Any], str]:
    cfg = ins.with_thresholds(build_config(config), **settings)
    return cfg.to_dict(), "Mining thresholds set in the config: " + ", ".join(f"{k}={v}" for k, v in settings.items())


def own_exclusions(v: Any, config: dict[str, Any] | None) -> dict[str, Any]:
    """`config` with mining.exclude_path confined to the visitor's folder. The session config keeps paths as typed
    (checked, not rewritten), and a relative one read or written as is would resolve against the server's cwd."""
    path = ((config or {}).get("mining") or {}).get("exclude_path")
    if not path or not v.public:
        return config or {}
    return {**config, "mining": {**config["mining"], "exclude_path": str(v.path(path, "mining.exclude_path", True))}}


def confined(v: Any, config: dict[str, Any], dataset: dict[str, Any] | None) -> dict[str, Any]:
    """The config a visitor may mine with: in public mode paths confined and the size of an in-process mining
    bounded (it holds a worker and memory while the page waits)."""
    if not v.public:
        return config
    cfg = v.config(ins.effective_config(config, dataset))
    rows = (dataset or {}).get("rows") or 0
    if rows > v.limits.mine_rows:
        raise ins.InspectError(
            f"{rows:,} rows: mining in the page is limited to {v.limits.mine_rows:,} rows on this "
            "server. Start a training instead: it mines as its first step."
        )
    return cfg.to_dict()


def _warn(exc: Exception, public: bool = False) -> str:
    return errors.warn(exc, "negatives tab", public)


def create_negatives_tab(ctx: Any) -> dict[str, Any]:
    ui = _table_layout(ctx)
    _thresholds_layout(ctx, ui)
    _wire_loading(ctx, ui)
    _wire_table(ctx, ui)
    _wire_thresholds(ctx, ui)
    return {
        "negatives_table": ui.table,
        "negatives_state": ui.state,
        "negatives_plot": ui.plot,
        "negatives_status": ui.status,
        "negatives_preview": ui.preview_stats,
    }


def _table_layout(ctx: Any) -> SimpleNamespace:
    """The run's line, Load/Mine, the filters, the table with its exclusion buttons, and the score histogram."""
    ui = SimpleNamespace(state=gr.State(dict(EMPTY)))
    gr.Markdown(
        "Hard negatives mined for the run shown (or mined now without training): the documents the model "
        "confuses with the right one, and likely false negatives in your data. Training adds some of them to each "
        f"row (Hard negatives per query in the Config tab, {MINING_DEFAULT} by default); 0 trains on your pairs with "
        "in-batch negatives only. Tick rows to keep them out of training; try other thresholds below."
    )
    info = gr.Markdown(data_line(ctx.dataset.value, ctx.config.value, run=ctx.run.value))
    gr.on(
        [ctx.dataset.change, ctx.config.change, ctx.run.change],
        lambda d, c, r: data_line(d, c, run=r),
        [ctx.dataset, ctx.config, ctx.run],
        [info],
        api_visibility="private",
        show_progress="hidden",
    )
    with gr.Row():
        ui.reload_btn = gr.Button("Load from run", size="sm")
        ui.mine_btn = gr.Button("Mine now (current dataset + config)", size="sm", variant="primary")
    ui.summary = gr.Markdown("No mined negatives loaded.")
    with gr.Row():
        ui.search = gr.Textbox(label="Search query / positive / negative", scale=3)
        ui.suspects = gr.Checkbox(label="Suspected false negatives only", value=False)
        ui.sort_by = gr.Dropdown(list(ins.SORTS), value=next(iter(ins.SORTS)), label="Sort")
    ui.table = gr.Dataframe(
        _table(None, set()),
        datatype=DTYPES,
        interactive=True,
        static_columns=list(range(1, 9)),
        max_chars=2000,  # whole texts, or nearly: a false negative is judged by reading it
        wrap=True,
        max_height=520,
        label="Mined negatives (tick 'exclude')",
        elem_id="negatives-table",
        column_widths=WIDTHS,
    )
    with gr.Row():
        ui.tick_btn = gr.Button("Tick all shown", size="sm")
        ui.untick_btn = gr.Button("Untick all shown", size="sm")
        ui.save_btn = gr.Button("Save exclusions", size="sm", variant="primary")
        ui.clear_btn = gr.Button("Stop using exclusions", size="sm")
    ui.status = gr.Markdown()
    ui.plot = gr.Plot(score_histogram(None), label="Positive vs negative scores")
    ui.filters = [ui.search, ui.suspects, ui.sort_by, ctx.config]
    return ui


def _thresholds_layout(ctx: Any, ui: SimpleNamespace) -> None:
    """The re-mining thresholds (from the config's mining section), Preview and Use."""
    with gr.Accordion("Re-mine with other thresholds (uses the cached embeddings)", open=False):
        m = build_config(ctx.config.value if isinstance(ctx.config.value, dict) else {}).mining
        with gr.Row():
            margin = gr.Number(m.margin, label="Margin to the positive (empty = none)", minimum=0)
            margin_type = gr.Radio(["relative", "absolute"], value=m.margin_type, label="Margin measured as")
            range_min = gr.Number(m.range_min, label="Skip the top candidates", precision=0, minimum=0)
            range_max = gr.Number(m.range_max, label="Candidates considered", precision=0, minimum=1)
            num_neg = gr.Number(
                max(1, m.num_negatives), label="Hard negatives per query", precision=0, minimum=0, maximum=50
            )
        with gr.Row():
            ui.preview_btn = gr.Button("Preview", variant="primary", size="sm")
            ui.use_btn = gr.Button("Use these thresholds for training", size="sm")
        ui.preview_stats = gr.Dataframe(label="Current vs preview", interactive=False)
        nothing_yet(ui.preview_stats, "No preview yet: change a threshold and press Preview.")
    ui.knobs = [margin, margin_type, range_min, range_max, num_neg]


def _loaded(ui: SimpleNamespace, new: dict[str, Any], text: str, sus: bool, sort: str, config: dict[str, Any]):
    """Updates drawing freshly loaded or mined rows: state, table, summary and histogram."""
    shown, line = view(new, text, sus, sort, config)
    return {ui.state: new, ui.table: shown, ui.summary: line, ui.plot: score_histogram(new.get("rows"))}


def _wire_loading(ctx: Any, ui: SimpleNamespace) -> None:
    """Rows from the shown run (when it changes or ends, or on Load) or mined now (`negatives_mine`)."""

    def on_run(run_dir: str | None, text: str, sus: bool, sort: str, config: dict[str, Any], request: gr.Request):
        try:
            v = ctx.visitor(request)
            run = v.run(run_dir)
            return _loaded(ui, load_run(str(run) if run else None), text, sus, sort, own_exclusions(v, config)) | {
                ui.status: ""
            }
        except Exception as exc:  # a run without mined rows is normal: say so in place, drop the old rows
            return dict(EMPTY), _table(None, set()), user_message(exc), score_histogram(None), ""

    def on_mine(
        config: dict[str, Any],
        dataset: dict[str, Any] | None,
        search: str,
        suspects_only: bool,
        sort_by: str,
        request: gr.Request,
        progress: gr.Progress = gr.Progress(),
    ):  # noqa: B008 (gradio's progress idiom)
        progress(0.1, desc="Mining (encoding the dataset once; later re-mines are fast)")
        try:
            v = ctx.visitor(request)
            config = confined(v, config, dataset)
            v.check_disk()
            with ctx.heavy(request):
                new = mine_now(config, None if v.public else dataset, v.runs_dir)
        except Exception as exc:
            return {ui.status: _warn(exc, ctx.public)}
        return _loaded(ui, new, search, suspects_only, sort_by, config) | {
            ui.status: f"Mined into `{Path(new['run']).name}`."
        }

    hidden = {"api_visibility": "private"}
    loaded = [ui.state, ui.table, ui.summary, ui.plot, ui.status]
    ctx.run.change(on_run, [ctx.run, *ui.filters], loaded, **hidden)
    ctx.run_ended.change(on_run, [ctx.run, *ui.filters], loaded, **hidden)
    ui.reload_btn.click(on_run, [ctx.run, *ui.filters], loaded, **hidden)
    ui.mine_btn.click(
        on_mine, [ctx.config, ctx.dataset, ui.search, ui.suspects, ui.sort_by], loaded, api_name="negatives_mine"
    )


def _wire_table(ctx: Any, ui: SimpleNamespace) -> None:
    """Filtering and sorting the table, ticking rows, and saving or dropping the exclusions."""
    table, filters = ui.table, ui.filters

    def on_filter(st: dict[str, Any], text: str, sus: bool, sort: str, config: dict[str, Any], request: gr.Request):
        try:
            return view(st, text, sus, sort, own_exclusions(ctx.visitor(request), config))
        except Exception as exc:
            return {ui.summary: _warn(exc, ctx.public)}

    def on_save(table: pd.DataFrame, config: dict[str, Any], request: gr.Request):
        try:
            v = ctx.visitor(request)
            v.check_disk()
            new, line = save_exclusions(table, own_exclusions(v, config), v.root)
            return new, hide_paths(line, ctx.public)
        except Exception as exc:
            return {ui.status: _warn(exc, ctx.public)}

    def tick(tbl: pd.DataFrame, value: bool) -> pd.DataFrame:
        return tbl.assign(exclude=value) if tbl is not None and not tbl.empty else tbl

    hidden = {"api_visibility": "private"}
    for comp in (ui.suspects, ui.sort_by):
        comp.change(on_filter, [ui.state, *filters], [table, ui.summary], **hidden)
    ui.search.submit(on_filter, [ui.state, *filters], [table, ui.summary], **hidden)
    ui.tick_btn.click(lambda t: tick(t, True), table, table, **hidden)
    ui.untick_btn.click(lambda t: tick(t, False), table, table, **hidden)
    # Redraw after the config changed here (the ticks follow the exclusions file); not on every config edit
    # elsewhere, which would resend the whole table each time.
    ui.save_btn.click(on_save, [table, ctx.config], [ctx.config, ui.status], api_name="negatives_exclude").then(
        on_filter, [ui.state, *filters], [table, ui.summary], **hidden
    )
    ui.clear_btn.click(clear_exclusions, ctx.config, [ctx.config, ui.status], **hidden).then(
        on_filter, [ui.state, *filters], [table, ui.summary], **hidden
    )


def _wire_thresholds(ctx: Any, ui: SimpleNamespace) -> None:
    """Preview other mining thresholds from the cached embeddings (`negatives_remine`), and use them."""

    def on_preview(
        st,
        config,
        dataset,
        search,
        suspects_only,
        sort_by,
        margin,
        margin_type,
        range_min,
        range_max,
        num_negatives,
        request: gr.Request,
        progress: gr.Progress = gr.Progress(),
    ):  # noqa: B008
        progress(0.1, desc="Re-mining from cached embeddings")
        text, sus, sort = search, suspects_only, sort_by
        try:
            v = ctx.visitor(request)
            config = confined(v, config, dataset)
            if v.public and st.get("config"):
                st = dict(st, config=v.config(build_config(st["config"])).to_dict())
            with ctx.heavy(request):
                new, stats = preview(
                    st,
                    config,
                    None if v.public else dataset,
                    thresholds(margin, margin_type, range_min, range_max, num_negatives),
                )
        except Exception as exc:
            return {ui.status: _warn(exc, ctx.public)}
        return _loaded(ui, new, text, sus, sort, config) | {
            ui.preview_stats: stats,
            ui.status: "Preview only: press 'Use these thresholds' to train with them.",
        }

    def on_use(config, *vals):
        try:
            return use_thresholds(config, thresholds(*vals))
        except Exception as exc:
            return {ui.status: _warn(exc, ctx.public)}

    ui.preview_btn.click(
        on_preview,
        [ui.state, ctx.config, ctx.dataset, ui.search, ui.suspects, ui.sort_by, *ui.knobs],
        [ui.state, ui.table, ui.summary, ui.plot, ui.preview_stats, ui.status],
        api_name="negatives_remine",
    )
    ui.use_btn.click(on_use, [ctx.config, *ui.knobs], [ctx.config, ui.status], api_visibility="private")

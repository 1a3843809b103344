"""`create_app()`: the studio as one `gr.Blocks`, one tab per module, sharing state through a StudioContext.

The studio only calls `core`; every tab is `create_<name>_tab(ctx)` in `studio/tabs/`. The API endpoints for
scripts (gradio_client) are registered by the tabs that own the logic:
  /validate_dataset, /current_dataset, /attach_corpus (data tab), /set_config, /load_config, /current_config,
  /model_choices (config tab), /start_training, /training_status, /stop_training (train tab), /compare_similarity,
  /compare_search (compare tab), /compare_runs and the export endpoints (export tab); README lists them all.

Public mode (a shared Space: `SPACE_ID` set, `STUDIO_PUBLIC=1` or `python app.py --public`) gives each visitor an
id kept in their browser (gr.BrowserState), their own folder, confined paths and the limits of core.limits.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Any

import gradio as gr

from core.config.limits import Limits, public_mode
from core.config.schema import load_config
from core.public.visitors import Visitors
from core.runs.queue import held_runs, queue
from studio import saved_state, signin, space
from studio.context import StudioContext, resolve_dirs
from studio.datasets import initial_dataset
from studio.files import MAX_UPLOAD_MB, short_path, transfer_limit_mb
from studio.style import STUDIO_CSS, redraw_plots_on_select
from studio.tabs import train as train_tab
from studio.tabs.compare import create_compare_tab
from studio.tabs.config import DEFAULT_CONFIG, create_config_tab
from studio.tabs.data import create_data_tab
from studio.tabs.export import create_export_tab
from studio.tabs.negatives import create_negatives_tab
from studio.tabs.rag import create_rag_tab

TITLE = "Embedding Fine-Tuning Studio"
INTRO = (
    f"# {TITLE}\nFine-tune a sentence-transformers embedding model on your own pairs, triplets or scored "
    "pairs with MultipleNegativesRankingLoss, in-batch negatives and mined hard "
    "negatives. **Data → Config → Train**, then inspect the hard negatives, compare "
    "before/after and export."
)
# The inputs a reload, a second tab or the next day's visit shows as the visitor left them (with dataset and config)
KEPT_INPUTS = [
    "compare_model_a",
    "compare_model_b",
    "compare_text_a",
    "compare_text_b",
    "compare_query",
    "compare_corpus_file",
    "rag_model_a",
    "rag_model_b",
    "rag_query",
    "rag_collection",
]
SWEEP_EVERY_S = 600  # how often a public studio looks for visitor folders past their time to live
log = logging.getLogger("studio")


def launch_kwargs(public: bool | None = None, workspace: Path | None = None) -> dict[str, Any]:
    """Arguments for `demo.launch` that belong to the studio rather than to where it runs (Gradio 6 takes the
    theme at launch); in public mode the upload route's disk floor (studio/space.py)."""
    public = public_mode() if public is None else public
    limits = Limits.from_env()
    upload_mb = limits.upload_mb if public else MAX_UPLOAD_MB
    kwargs = {"theme": gr.themes.Soft(), "max_file_size": f"{transfer_limit_mb(upload_mb):g}mb", "css": STUDIO_CSS}
    if public:
        kwargs["app_kwargs"] = {"middleware": [space.upload_floor(limits, workspace)]}
    return kwargs


def initial_config(public: bool = False) -> dict[str, Any]:
    """The shipped default config (its sample path absolute inside the package), so the studio works from any
    directory; shown shorter where a local studio can."""
    cfg = load_config(DEFAULT_CONFIG).to_dict()
    if cfg.get("dataset_path") and not public:
        cfg["dataset_path"] = short_path(Path(cfg["dataset_path"]))
    return cfg


def _sweeper(ctx: StudioContext) -> None:
    """Delete visitors' folders a while after their last visit (public mode only; never a live or queued run's)."""
    ttl = ctx.limits.visitor_ttl_hours * 3600
    while True:
        try:
            removed = ctx.visitors.sweep(ttl, busy=set(held_runs()))
            if removed:
                log.info("removed %d idle visitor folders", len(removed))
        except Exception:  # the sweeper must outlive one unreadable folder
            log.exception("visitor sweep")
        time.sleep(SWEEP_EVERY_S)


def create_app(
    workspace: str | Path | None = None, runs_dir: str | Path | None = None, public: bool | None = None
) -> gr.Blocks:
    """The studio. `workspace` (uploads, saved configs, public visitors' folders) defaults to $STUDIO_WORKSPACE or
    ./workspace, `runs_dir` to $STUDIO_RUNS_DIR or ./runs. `public` defaults to public_mode()."""
    ws, rd = resolve_dirs(workspace, runs_dir)
    public = public_mode() if public is None else public
    limits = Limits.from_env(gpu=space.hardware()[0])  # a GPU trains faster: larger time and size limits
    queue(rd / ".locks")  # adopts a training child that outlived a restarted server
    config = initial_config(public)
    config["runs_dir"] = "runs" if public else short_path(rd)  # public: inside each visitor's own folder
    dataset = initial_dataset(config)
    # Gradio's cache holds every upload (copied into the visitor's folder on arrival) and every served file (a zip is
    # needed until downloaded), outside any visitor's disk cap: public mode clears files older than an hour every
    # 10 minutes. Visitors' folders are ours (see _sweeper).
    with gr.Blocks(title=TITLE, delete_cache=(600, 3600) if public else None) as demo:
        gr.Markdown(INTRO)
        ctx = StudioContext(
            workspace=ws,
            runs_dir=rd,
            dataset=gr.State(dataset),
            config=gr.State(config),
            run=gr.State(None),
            run_ended=gr.State(None),
            public=public,
            limits=limits,
            visitors=Visitors(ws, limits.new_visitors_per_min) if public else None,
        )
        who = _space_bar(ctx)
        stored_id = gr.BrowserState(None, storage_key="embedding-studio-visitor") if public else None
        parts = _add_tabs(ctx)
        load = _page_load(demo, ctx, stored_id, who)
        kept = {name: parts[name] for name in KEPT_INPUTS if name in parts}
        restored = saved_state.wire(load, ctx, kept, parts["status"])  # the visitor's own work first
        train_tab.attach(restored, ctx)
    demo.studio_context = ctx  # for tests and embedding apps: the same handles the tabs were built with
    return demo


def _add_tabs(ctx: StudioContext) -> dict[str, Any]:
    """Every tab, and the components they return (by name), for what spans tabs (the visitor's saved state)."""
    parts: dict[str, Any] = {}
    with gr.Tabs(overflow_behavior="wrap"):  # every tab in view on a phone, none behind a "⋯" menu
        for tab_id, label, create in [
            ("data", "1 · Data", create_data_tab),
            ("config", "2 · Config", create_config_tab),
            ("train", "3 · Train", train_tab.create_train_tab),
            ("negatives", "4 · Negatives", create_negatives_tab),
            ("compare", "5 · Compare", create_compare_tab),
            ("export", "6 · Export", create_export_tab),
            ("rag", "7 · Search your documents", create_rag_tab),
        ]:
            with gr.Tab(label, id=tab_id) as tab:
                parts |= create(ctx) or {}
            redraw_plots_on_select(tab)  # plots drawn while hidden take the full width when shown
    return parts


def _space_bar(ctx: StudioContext) -> gr.Markdown | None:
    """The header (mode, hardware, limits, storage) beside Sign in and Duplicate this Space where they apply; returns
    the line saying who the visitor is (public mode with sign-in on), filled in by the page's load event."""
    signin_on, why_off = signin.availability() if ctx.public else (False, "")
    who = None
    with gr.Row(equal_height=True):
        with gr.Column(scale=4):
            gr.Markdown(space.header(ctx, why_off), elem_id="studio-header")
            if signin_on:
                who = gr.Markdown(elem_id="studio-who")
        if signin_on or space.on_space():
            with gr.Column(scale=1, min_width=240):
                if signin_on:
                    signin.login_button()
                space.duplicate_button()
    return who


def _page_load(demo: gr.Blocks, ctx: StudioContext, stored_id: Any, who: gr.Markdown | None) -> Any:
    """The page's load event. In public mode it binds the browser's session to its visitor, a signed-in one to their
    user folder (and unbinds it when the page goes), and the sweeper of idle visitors' folders starts."""
    if ctx.public:

        def on_load(stored: Any, request: gr.Request, profile: gr.OAuthProfile | None):
            # An id from the browser is used only when this server issued it (format, signature).
            anon, line = signin.page_visitor(ctx, stored, profile, request)
            return (anon, line) if who is not None else anon

        outputs = [stored_id, who] if who is not None else [stored_id]
        load = demo.load(
            on_load, [stored_id], outputs, api_name="page_visitor", api_visibility="private", show_progress="hidden"
        )

        def on_unload(request: gr.Request) -> None:
            ctx.unbind(request)

        demo.unload(on_unload)
        threading.Thread(target=_sweeper, args=(ctx,), name="visitor-sweep", daemon=True).start()
    else:
        load = demo.load(lambda: None, None, None, api_visibility="private", show_progress="hidden")
    return load

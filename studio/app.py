"""`create_app()`: the studio as one `gr.Blocks`, one tab per module, sharing state through a StudioContext.

The studio only calls `core`; every tab is `create_<name>_tab(ctx)` in `studio/tabs/`. The API endpoints for
scripts (gradio_client) are registered by the tabs that own the logic:
  /validate_dataset, /current_dataset (data tab), /start_training, /training_status, /stop_training (train tab),
  /compare_similarity, /compare_search (compare tab).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gradio as gr

from core.config import load_config
from studio.context import StudioContext, resolve_dirs
from studio.style import STUDIO_CSS
from studio.tabs import train as train_tab
from studio.tabs.compare import create_compare_tab
from studio.tabs.config import DEFAULT_CONFIG, create_config_tab
from studio.tabs.data import MAX_UPLOAD_MB, create_data_tab, initial_dataset, short_path
from studio.tabs.export import create_export_tab
from studio.tabs.negatives import create_negatives_tab

TITLE = "Embedding Fine-Tuning Studio"
INTRO = (f"# {TITLE}\nFine-tune a sentence-transformers embedding model on your own pairs, triplets or scored "
         "pairs with MultipleNegativesRankingLoss, in-batch negatives and mined hard "
         "negatives. **Data → Config → Train**, then inspect the hard negatives, compare "
         "before/after and export.")


def launch_kwargs() -> dict[str, Any]:
    """Arguments for `demo.launch` that belong to the studio rather than to where it runs (Gradio 6 takes the
    theme at launch)."""
    return {"theme": gr.themes.Soft(), "max_file_size": f"{MAX_UPLOAD_MB}mb", "css": STUDIO_CSS}


def initial_config() -> dict[str, Any]:
    """assets/configs/default.yaml with its dataset path made absolute, so the studio works from any directory."""
    cfg = load_config(DEFAULT_CONFIG).to_dict()
    sample = DEFAULT_CONFIG.parents[2] / str(cfg.get("dataset_path") or "")
    if cfg.get("dataset_path") and not Path(cfg["dataset_path"]).is_absolute() and sample.is_file():
        cfg["dataset_path"] = short_path(sample)
    return cfg


def create_app(workspace: str | Path | None = None, runs_dir: str | Path | None = None) -> gr.Blocks:
    """The studio. `workspace` (uploads, saved configs) defaults to $STUDIO_WORKSPACE or ./workspace, `runs_dir`
    to $STUDIO_RUNS_DIR or ./runs. Starts on the bundled model and the validated sample dataset."""
    ws, rd = resolve_dirs(workspace, runs_dir)
    config = initial_config()
    config["runs_dir"] = short_path(rd)
    dataset = initial_dataset(config)
    with gr.Blocks(title=TITLE) as demo:
        gr.Markdown(INTRO)
        ctx = StudioContext(workspace=ws, runs_dir=rd, dataset=gr.State(dataset), config=gr.State(config),
                            run=gr.State(None), run_ended=gr.State(None))
        with gr.Tabs() as tabs:
            ctx.components["tabs"] = tabs
            for tab_id, label, create in [
                ("data", "1 · Data", create_data_tab),
                ("config", "2 · Config", create_config_tab),
                ("train", "3 · Train", train_tab.create_train_tab),
                ("negatives", "4 · Negatives", create_negatives_tab),
                ("compare", "5 · Compare", create_compare_tab),
                ("export", "6 · Export", create_export_tab),
            ]:
                with gr.Tab(label, id=tab_id) as tab:
                    ctx.components[f"{tab_id}_tab"] = tab
                    ctx.components[tab_id] = create(ctx) or {}
        train_tab.attach(demo, ctx)
    demo.studio_context = ctx  # for tests and embedding apps: the same handles the tabs were built with
    return demo

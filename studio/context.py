"""The contract every studio tab is written against.

Each tab module exposes ``create_<name>_tab(ctx: StudioContext) -> dict[str, component]`` and is called inside
``with gr.Tab(...)`` by :func:`studio.app.create_app`. Tabs share state only through the three ``gr.State`` objects
below, so a tab never needs to import another tab.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gradio as gr

DEFAULT_WORKSPACE = Path("workspace")
DEFAULT_RUNS_DIR = Path("runs")


@dataclass
class StudioContext:
    """Shared handles for the tabs of one studio (one ``gr.Blocks``).

    Attributes:
        workspace: per-server workspace root (default ./workspace; env STUDIO_WORKSPACE); uploads go to
            workspace/uploads/<session-hash>/.
        runs_dir: where runs live (default ./runs; env STUDIO_RUNS_DIR).
        dataset: gr.State holding ``dict | None``: {"path", "format", "rows", "report": report.to_dict()}, the
            last VALID dataset.
        config: gr.State holding ``dict``: ``EmbedConfig.to_dict()``, the current valid config.
        run: gr.State holding ``str | None``: run_dir of the run shown (current or picked from history).
        run_ended: gr.State holding ``str | None``: the shown run once it has ended (finished, stopped or failed),
            None while it is live. Tabs that show a run's results (mined rows, models, history) also refresh on
            its change, since a run's results only exist once it has ended.
        components: named components other tabs may wire to, e.g. "tabs" (gr.Tabs), "train_tab", "compare_tab".
    """

    workspace: Path
    runs_dir: Path
    dataset: gr.State
    config: gr.State
    run: gr.State
    run_ended: gr.State
    components: dict[str, Any] = field(default_factory=dict)


def resolve_dirs(workspace: str | Path | None = None, runs_dir: str | Path | None = None) -> tuple[Path, Path]:
    """Workspace and runs directories: explicit argument, then env var, then the default; both created."""
    ws = Path(workspace or os.environ.get("STUDIO_WORKSPACE") or DEFAULT_WORKSPACE).resolve()
    rd = Path(runs_dir or os.environ.get("STUDIO_RUNS_DIR") or DEFAULT_RUNS_DIR).resolve()
    ws.mkdir(parents=True, exist_ok=True)
    rd.mkdir(parents=True, exist_ok=True)
    return ws, rd

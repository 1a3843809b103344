"""What a visitor expects at the top of a Hugging Face Space, and the Space's own guards.

The header says which mode is on, the limits and the hardware the trainings use (the GPU's name and memory, or the
CPU's model and cores), and whether a visitor's work survives a restart (persistent storage, core/config/storage.py).
On a Space (`SPACE_ID`) a "Duplicate this Space" button offers private training on hardware of one's own choosing;
`studio/signin.py` adds "Sign in with Hugging Face". `UploadFloor` keeps Gradio's upload route from filling the disk.
"""

from __future__ import annotations

import functools
import os
import shutil
from pathlib import Path
from typing import Any

import gradio as gr
from gradio.utils import get_space, get_upload_folder
from starlette.middleware import Middleware

from core.config.storage import data_dir
from core.models.devices import hardware as measure_hardware

DUPLICATE_WHY = (
    "**Duplicate this Space** to train privately on hardware you choose, without this Space's limits: make your "
    "copy private and set its variable `STUDIO_PUBLIC=0`."
)


@functools.cache
def hardware() -> tuple[bool, str]:
    """(GPU present, the hardware in words), measured once per server."""
    return measure_hardware()


def on_space() -> bool:
    return bool(os.environ.get("SPACE_ID"))


def storage_line(workspace: Path) -> str:
    """Whether visitors' work outlives a restart; empty off a Space without persistent storage (a local disk)."""
    root = data_dir()
    if root is not None and workspace.resolve().is_relative_to(root):
        return "Storage: persistent; your runs and models survive a restart of this server."
    if on_space():
        return (
            "⚠️ **No persistent storage: every run, model and upload is lost when this Space restarts** "
            "(its owner can add persistent storage in the Space's settings)."
        )
    return ""


def header(ctx: Any, signin_off: str = "") -> str:
    """The page header: mode, hardware, limits, storage and, where sign-in is off on a Space, why."""
    _, hw = hardware()
    if not ctx.public:
        return f"*Local mode: one trusted user; every path on this machine can be used.* Trainings run on {hw}."
    where = "this Space" if on_space() else "this server"
    lines = [
        "**Public mode**: your files, runs and models are yours alone and live in a folder only you can reach.",
        f"Limits on {where} ({hw}): {ctx.limits.describe()}.",
        storage_line(ctx.workspace),
    ]
    if signin_off and on_space():
        lines.append(f"Sign-in is off: {signin_off}.")
    return "  \n".join(line for line in lines if line)


def duplicate_button() -> gr.DuplicateButton | None:
    """On a Space, "Duplicate this Space" with one line on why; elsewhere nothing."""
    space = os.environ.get("SPACE_ID", "").strip()
    if not space:
        return None
    gr.Markdown(DUPLICATE_WHY)
    # On a real Space (SYSTEM=spaces) Gradio wires the click itself; elsewhere the button is a plain link.
    link = None if get_space() else f"https://huggingface.co/spaces/{space}?duplicate=true"
    return gr.DuplicateButton("Duplicate this Space", link=link, link_target="_blank", size="sm", min_width=200)


class UploadFloor:
    """ASGI middleware: Gradio's upload route writes a file into its cache before any handler sees it, so in public
    mode an upload whose announced size would take the disk under the free-disk reserve (STUDIO_MIN_FREE_DISK_MB)
    is refused there with a 507 and the reason. A request that announces no size counts as the largest upload."""

    def __init__(self, app: Any, floor_mb: float, max_upload_mb: float, folders: list[Path]):
        self.app, self.floor, self.max_bytes, self.folders = app, floor_mb * 1e6, max_upload_mb * 1e6, folders

    def _free(self) -> float:
        free = []
        for folder in self.folders:
            existing = next((p for p in (folder, *folder.parents) if p.exists()), None)
            if existing is not None:
                free.append(shutil.disk_usage(existing).free)
        return min(free) if free else float("inf")

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["method"] == "POST" and scope["path"].endswith("/gradio_api/upload"):
            length = dict(scope.get("headers") or []).get(b"content-length", b"")
            size = int(length) if length.isdigit() else self.max_bytes
            free = self._free()
            if free - size < self.floor:
                body = (
                    f"This server's disk is nearly full ({free / 1e6:.0f} MB free, {self.floor / 1e6:.0f} MB kept "
                    "free): uploads are refused until idle visitors' folders are cleared. Try again later."
                ).encode()
                await send(
                    {"type": "http.response.start", "status": 507, "headers": [(b"content-type", b"text/plain")]}
                )
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)


def upload_floor(limits: Any, workspace: Path | None = None) -> Middleware:
    """The `Middleware` entry for `demo.launch(app_kwargs={"middleware": [...]})`."""
    folders = [Path(get_upload_folder())] + ([workspace] if workspace else [])
    return Middleware(UploadFloor, floor_mb=limits.min_free_disk_mb, max_upload_mb=limits.upload_mb, folders=folders)

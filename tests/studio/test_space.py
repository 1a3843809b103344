"""What a Space visitor sees at the top of the page (mode, hardware, limits, storage, Duplicate this Space) and the
upload route's disk floor, on a real Gradio server."""

from __future__ import annotations

import shutil
from pathlib import Path
from types import SimpleNamespace

import gradio as gr
import httpx
import pytest

from core.config.limits import Limits
from studio import space
from studio.app import launch_kwargs
from tests.studio.conftest import _free_port


def test_the_header_names_the_hardware_limits_and_storage(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("STUDIO_DATA_DIR", raising=False)
    monkeypatch.setenv("SPACE_ID", "someone/embedding-studio")
    gpu, hw = space.hardware()
    assert hw.startswith("GPU: " if gpu else "CPU: ") and ("GB" in hw if gpu else "cores" in hw)
    ctx = SimpleNamespace(public=True, limits=Limits.from_env(), workspace=tmp_path / "workspace")
    text = space.header(ctx, "the `gradio[oauth]` extra is not installed")
    assert f"Limits on this Space ({hw})" in text and "epochs" in text
    assert "lost when this Space restarts" in text and "Sign-in is off: the `gradio[oauth]` extra" in text
    monkeypatch.setenv("STUDIO_DATA_DIR", str(tmp_path))
    text = space.header(ctx)
    assert "Storage: persistent" in text and "lost when" not in text and "Sign-in is off" not in text
    monkeypatch.delenv("SPACE_ID")
    monkeypatch.delenv("STUDIO_DATA_DIR")
    assert "Limits on this server" in space.header(ctx) and "lost when" not in space.header(ctx)
    assert hw in space.header(SimpleNamespace(public=False)) and "Local mode" in space.header(
        SimpleNamespace(public=False)
    )


def test_duplicate_this_space_only_on_a_space(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SPACE_ID", raising=False)
    monkeypatch.delenv("SYSTEM", raising=False)
    with gr.Blocks():
        assert space.duplicate_button() is None
    monkeypatch.setenv("SPACE_ID", "someone/embedding-studio")
    with gr.Blocks():
        button = space.duplicate_button()
    assert isinstance(button, gr.DuplicateButton)
    assert button.link == "https://huggingface.co/spaces/someone/embedding-studio?duplicate=true"


def serve_uploads(monkeypatch: pytest.MonkeyPatch, floor_mb: float) -> tuple[gr.Blocks, str]:
    """A Blocks with an upload box, launched with the studio's public-mode launch arguments."""
    monkeypatch.setenv("STUDIO_MIN_FREE_DISK_MB", str(floor_mb))
    with gr.Blocks() as demo:
        gr.File()
    port = _free_port()
    demo.launch(
        prevent_thread_lock=True,
        server_name="127.0.0.1",
        server_port=port,
        quiet=True,
        **launch_kwargs(public=True),
    )
    return demo, f"http://127.0.0.1:{port}/"


def test_uploads_that_would_cross_the_disk_floor_are_refused_before_they_are_written(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    cache = tmp_path / "gradio-cache"  # Gradio's upload cache, this test's own
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(cache))
    free_mb = shutil.disk_usage(next(p for p in (cache, *cache.parents) if p.exists())).free / 1e6
    payload = {"files": ("pairs.jsonl", b'{"query": "q", "document": "d"}\n' * 100)}
    demo, url = serve_uploads(monkeypatch, floor_mb=1)
    try:
        ok = httpx.post(url + "gradio_api/upload", files=payload, timeout=30)
        assert ok.status_code == 200 and Path(ok.json()[0]).is_file()
    finally:
        demo.close()
    demo, url = serve_uploads(monkeypatch, floor_mb=free_mb + 10_000)  # the disk is "down to its reserve"
    try:
        before = set(cache.rglob("*")) if cache.exists() else set()
        refused = httpx.post(url + "gradio_api/upload", files=payload, timeout=30)
        assert refused.status_code == 507 and "disk is nearly full" in refused.text, refused.text
        assert (set(cache.rglob("*")) if cache.exists() else set()) == before  # nothing was written
        assert httpx.get(url + "config", timeout=30).status_code == 200  # the rest of the server still answers
    finally:
        demo.close()

"""The studio launched in-process on a free port, driven through gradio_client like any script would."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def studio_dirs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("studio")


@pytest.fixture(scope="session")
def studio(studio_dirs: Path) -> Iterator:
    """(demo, url) of a studio whose workspace and runs live in a temp folder."""
    from studio.app import create_app

    demo = create_app(workspace=studio_dirs / "workspace", runs_dir=studio_dirs / "runs")
    demo.queue(default_concurrency_limit=1)
    _, url, _ = demo.launch(
        prevent_thread_lock=True, server_name="127.0.0.1", server_port=_free_port(), share=False, quiet=True
    )
    yield demo, url
    from core.runs.queue import live_runs, stop_training

    if live_runs():  # never leave a training process behind
        stop_training(wait_s=30)
    demo.close()


@pytest.fixture(scope="session")
def client(studio) -> Iterator:
    from gradio_client import Client

    c = Client(studio[1], verbose=False)
    yield c
    c.close()

"""Shared fixtures: tiny real datasets cut from the bundled samples, and a config that trains in seconds."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # tests never reach a hub; resolution must work offline
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# Under pytest-xdist each worker gets its share of the cores (set before torch loads and reads it): two workers at
# the machine's full thread count would each run at half speed and thrash the caches.
if int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")) > 1:
    _share = (os.cpu_count() or 1) // int(os.environ["PYTEST_XDIST_WORKER_COUNT"])
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, _share)))
# Gradio copies every upload and served file (model zips among them) into GRADIO_TEMP_DIR, /tmp/gradio by default,
# and nothing removes them after the session: a run of the suite would leave gigabytes behind.
_GRADIO_TMP = None
if "GRADIO_TEMP_DIR" not in os.environ:
    _GRADIO_TMP = os.environ["GRADIO_TEMP_DIR"] = tempfile.mkdtemp(prefix="studio-tests-gradio-")


def pytest_sessionfinish(session, exitstatus):
    if _GRADIO_TMP:
        shutil.rmtree(_GRADIO_TMP, ignore_errors=True)


ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "core" / "assets" / "samples"  # `assets/` at the root links here
SHARED_DATA = ROOT.parent / "shared" / "data"


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


@pytest.fixture(scope="session")
def sample_pairs() -> list[dict]:
    return read_jsonl(SAMPLES / "it_helpdesk_pairs.jsonl")


@pytest.fixture()
def own_queue(tmp_path: Path):
    """A training queue of this test's own, with its lock folder in tmp_path. The engine keeps one queue per process
    and its first caller picks the lock folder: without this, a test would use the queue of whichever test ran first
    in the process (under pytest-xdist that order varies), whose folder may already be deleted."""
    with own_training_queue(tmp_path / "locks") as q:
        yield q


@contextlib.contextmanager
def own_training_queue(locks_dir: Path):
    """The engine's queue replaced by a new one for the duration (module-scoped fixtures use this directly)."""
    from core.runs import queue as queue_mod

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(queue_mod, "_queue", None)
        yield queue_mod.queue(locks_dir)


def copy_bundled(dest: Path) -> Path:
    """The bundled model's files, weights linked rather than copied, so configs can be edited per test."""
    from core.models.load import bundled_model_path

    src = Path(bundled_model_path())
    for f in src.rglob("*"):
        target = dest / f.relative_to(src)
        target.parent.mkdir(parents=True, exist_ok=True)
        if f.is_dir():
            target.mkdir(exist_ok=True)
        elif f.suffix == ".safetensors":
            os.symlink(f, target)
        else:
            target.write_bytes(f.read_bytes())
    return dest


def tiny_overrides(tmp: Path, dataset: Path, **extra) -> list[str]:
    """A config that trains the real bundled model for a handful of steps."""
    items = {
        "dataset_path": str(dataset),
        "runs_dir": str(tmp / "runs"),
        "output_dir": str(tmp / "model"),
        "cache_dir": str(tmp / "cache"),
        "max_seq_length": 32,
        "batch_size": 8,
        "test_size": 0.25,
        "mining.num_negatives": 1,
        "mining.batch_size": 32,
        **extra,
    }
    return [f"{k}={v}" for k, v in items.items()]


@pytest.fixture()
def unreachable_hub(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch):
    """The same hub on every machine: an empty model cache and an endpoint on a closed loopback port, so a test of
    "not cached" or "offline" holds with or without internet and whatever the machine has cached."""
    from huggingface_hub import constants

    from core.models.load import resolve_model

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path_factory.mktemp("empty_hf_cache")))
    monkeypatch.setattr(constants, "ENDPOINT", "http://127.0.0.1:9")  # discard port: nothing listens there
    resolve_model.cache_clear()
    yield
    resolve_model.cache_clear()


@pytest.fixture
def fp32_encoding(monkeypatch):
    """Pins the encode probe's verdict to fp32 for a test about something else (the ONNX query path, prompts), so
    it passes whichever precision this machine's probe would pick."""
    from core.models import encoding

    monkeypatch.setattr(encoding, "decide", lambda model: {"bf16": False, "train_bf16": False})

"""Training on a CUDA GPU: bf16 autocast (`precision: auto`), mining and the encode-once baseline evaluation on the
device, the memory preset, and a saved model that loads on a CPU. Skipped where no GPU is present (CI)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sentence_transformers import SentenceTransformer

from core.config.schema import load_config
from core.runs.events import read_events
from core.training.run import train
from tests.conftest import tiny_overrides, write_jsonl

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def _run(tmp_path, rows, **extra):
    data = write_jsonl(tmp_path / "pairs.jsonl", rows)
    cfg = load_config("assets/configs/default.yaml", tiny_overrides(tmp_path, data, num_epochs=2, **extra))
    result = train(cfg)
    assert result.state == "finished", result.message
    started = next(e for e in read_events(result.run_dir / "events.jsonl")[0] if e["type"] == "run_started")
    return result, started


def test_bf16_training_with_mining_on_the_gpu(tmp_path, sample_pairs):
    result, started = _run(tmp_path, sample_pairs[:64])
    assert started["device"].startswith("cuda") and started["precision"] == "bf16"
    # The baseline evaluation reused mining's corpus embeddings (held on the CPU) against queries on the GPU.
    assert set(result.before) == set(result.after) and np.isfinite(list(result.after.values())).all()
    gpu = SentenceTransformer(result.model_dir, device="cuda")
    cpu = SentenceTransformer(result.model_dir, device="cpu")
    assert next(cpu.parameters()).dtype == torch.float32  # saved as fp32 master weights, not bf16
    texts = [r["query"] for r in sample_pairs[:8]]
    a = gpu.encode(texts, normalize_embeddings=True)
    b = cpu.encode(texts, normalize_embeddings=True)
    assert (a * b).sum(axis=1).min() > 0.999


def test_memory_preset_on_the_gpu(tmp_path, sample_pairs):
    result, started = _run(tmp_path, sample_pairs[:64], preset="memory", batch_size=32, max_seq_length=64)
    assert started["precision"] == "bf16" and result.after


def test_gpu_training_uses_the_librarys_padded_batches(sample_pairs):
    from core.config.schema import build_config
    from core.models.load import load_model
    from core.training.losses import build_loss

    model = load_model("sentence-transformers/all-MiniLM-L6-v2")
    loss = build_loss(build_config({}), "pairs", model)
    assert str(model.device).startswith("cuda") and type(loss).forward.__module__ != "core.training.losses"


@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs two or more CUDA GPUs")
def test_two_gpus_train_data_parallel_with_nccl(tmp_path, sample_pairs):
    import subprocess
    import sys

    from tests.conftest import ROOT

    data = write_jsonl(tmp_path / "pairs.jsonl", sample_pairs[:96])
    proc = subprocess.run(
        [sys.executable, "-m", "core", "train", "--nproc", "2", *tiny_overrides(tmp_path, data, num_epochs=2)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    run_dir = next((tmp_path / "runs").iterdir())
    events = read_events(run_dir / "events.jsonl")[0]
    started = [e for e in events if e["type"] == "run_started"]
    assert len(started) == 1 and started[0]["world_size"] == 2 and started[0]["device"].startswith("cuda")
    assert events[-1]["type"] == "finished" and SentenceTransformer(str(tmp_path / "model"), device="cpu")


@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs two or more CUDA GPUs")
def test_one_process_mines_and_evaluates_on_every_gpu(tmp_path, sample_pairs):
    from core.models.devices import local_devices

    assert local_devices() == [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    result, _ = _run(tmp_path, sample_pairs[:64])
    assert result.before and result.after

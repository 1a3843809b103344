"""Shared fixtures: tiny real datasets cut from the bundled samples, and a config that trains in seconds."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # tests never reach a hub; resolution must work offline
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "assets" / "samples"
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

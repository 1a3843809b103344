"""The training precision of a run, measured on the run's own batches (core.training.precision), with the
bundled MiniLM on real rows of the sample. The choice itself depends on the CPU: the tests check that it follows
the measurement, whichever way it goes."""

from __future__ import annotations

import platform

import pandas as pd
import pytest
import torch

from core.config.schema import EmbedConfig
from core.models.devices import release_freed_memory
from core.models.encoding import training_precision
from core.models.load import load_model
from core.training import precision
from core.training.precision import MAX_SLOWER, MIN_SPEEDUP, MIN_STEPS, run_precision


@pytest.fixture(scope="module")
def model():
    return load_model(EmbedConfig().model_name, max_seq_length=32)


@pytest.fixture(scope="module")
def table(sample_pairs) -> pd.DataFrame:
    rows = sample_pairs[:48]
    return pd.DataFrame(
        {
            "query": [r["query"] for r in rows],
            "positive": [r["document"] for r in rows],
            "negative": [rows[(i + 7) % len(rows)]["document"] for i in range(len(rows))],
        }
    )


def _machine_probe_says(monkeypatch, bf16_slower: float) -> None:
    """The machine's probe (core.models.encoding, cached per machine) as it reads on a CPU where bf16 training is
    `bf16_slower` times slower than fp32: both branches below run on every CPU, whatever its own probe found."""
    measured = {"train_fp32_s": 0.2, "train_bf16_s": 0.2 * bf16_slower, "train_bf16": bf16_slower < 1}
    monkeypatch.setattr(precision, "decide", lambda model: measured)


def test_a_long_run_measures_both_precisions_on_its_batches(model, table, monkeypatch) -> None:
    _machine_probe_says(monkeypatch, 1.25)  # the AMX machine's probe: slower on its few texts, faster on real batches
    cfg = EmbedConfig(batch_size=8, max_seq_length=32)
    before = next(model.parameters()).detach().clone()
    args, decided = run_precision(cfg, "pairs", table, model, total_steps=MIN_STEPS)
    assert decided["measured"] is True and decided["fp32_us_per_token"] > 0 and decided["bf16_us_per_token"] > 0
    faster = decided["fp32_us_per_token"] >= MIN_SPEEDUP * decided["bf16_us_per_token"]
    assert decided["precision"] == ("bf16" if faster else "fp32")
    assert args == ({"bf16": True, "use_cpu": True} if faster else {})
    assert torch.equal(next(model.parameters()), before)  # the steps were taken on a copy


def test_short_runs_and_explicit_precisions_are_not_measured(model, table) -> None:
    short, decided = run_precision(EmbedConfig(), "pairs", table, model, total_steps=MIN_STEPS - 1)
    assert short == training_precision(EmbedConfig(), model) and decided["measured"] is False
    assert "the machine's probe decides" in decided["reason"]
    fp32, decided = run_precision(EmbedConfig(precision="fp32"), "pairs", table, model, total_steps=1000)
    assert fp32 == {} and decided == {"precision": "fp32", "measured": False, "reason": "precision: fp32"}
    bf16, _ = run_precision(EmbedConfig(precision="bf16"), "pairs", table, model, total_steps=1000)
    assert bf16 == {"bf16": True, "use_cpu": True}


def test_a_cpu_without_bf16_arithmetic_is_not_measured_again(model, table, monkeypatch) -> None:
    """avx2 only: the machine's probe found bf16 training 15x slower; a bf16 step of the run's batch would then
    take minutes to measure, and fp32 is the answer anyway."""
    _machine_probe_says(monkeypatch, 15.0)
    args, decided = run_precision(EmbedConfig(batch_size=8, max_seq_length=32), "pairs", table, model, 1000)
    assert decided["measured"] is False and decided["precision"] == "fp32" and args == {}
    assert "15x slower in this machine's probe" in decided["reason"]
    _machine_probe_says(monkeypatch, MAX_SLOWER * 0.9)  # just under the bar: measured
    assert run_precision(EmbedConfig(batch_size=8, max_seq_length=32), "pairs", table, model, 1000)[1]["measured"]


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="malloc_trim is glibc's; elsewhere nothing to trim")
def test_memory_freed_between_phases_goes_back_to_the_system() -> None:
    """A training step's activations are tensors of a few hundred KB to a few MB; glibc keeps what they free in its
    heaps when a survivor sits above them, so the next phase grew beside them (the bench's peak RSS). The release
    between phases returns those pages."""
    keep, freed = [], []
    for i in range(4000):  # 400 MB in 100 KB tensors, every 50th kept: a fragmented heap
        (keep if i % 50 == 0 else freed).append(torch.ones(25_000))
    held = release_freed_memory()
    del freed
    assert release_freed_memory() < held - 250  # MB: most of the 392 MB freed left the process

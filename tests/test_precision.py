"""The training precision of a run, measured on the run's own batches (core.training.precision), with the
bundled MiniLM on real rows of the sample. The choice itself depends on the CPU: the tests check that it follows
the measurement, whichever way it goes."""

from __future__ import annotations

import pandas as pd
import pytest
import torch

from core.config.schema import EmbedConfig
from core.models.encoding import training_precision
from core.models.load import load_model
from core.training.precision import MIN_SPEEDUP, MIN_STEPS, run_precision


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


def test_a_long_run_measures_both_precisions_on_its_batches(model, table) -> None:
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

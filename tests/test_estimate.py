"""The time estimate before Start, and the per-phase progress a run writes: real probe, real training, tiny data."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from core.config.schema import load_config
from core.runs.events import read_events
from core.runs.queue import run_status
from core.training.estimate import PHASES, estimate, estimate_error, estimate_markdown
from core.training.run import train
from tests.conftest import ROOT, tiny_overrides, write_jsonl

DEFAULT = ROOT / "assets" / "configs" / "default.yaml"


@pytest.fixture(scope="module")
def tiny(tmp_path_factory, sample_pairs):
    tmp = tmp_path_factory.mktemp("estimate")
    data = write_jsonl(tmp / "pairs.jsonl", sample_pairs[:40])
    return tmp, tiny_overrides(tmp, data, num_epochs=1)


@pytest.mark.slow
def test_cli_estimate_measures_then_reuses_the_probe(tiny):
    tmp, overrides = tiny
    cmd = [sys.executable, "-m", "core", "estimate", "--config", str(DEFAULT), "--json", *overrides]
    first = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert first.returncode == 0, first.stderr[-2000:]
    est = json.loads(first.stdout)
    assert list(est["phases"]) == PHASES
    assert all(v >= 0 for v in est["phases"].values()) and est["phases"]["training"] > 0
    assert est["phases"]["mining"] > 0 and est["plan"]["steps"] == 4  # 30 training rows in batches of 8
    assert est["probe"]["cached"] is False and (tmp / "cache" / "estimate_probe.json").exists()
    again = estimate(load_config(DEFAULT, overrides))
    assert again["probe"]["cached"] is True
    assert abs(again["phases"]["training"] - est["phases"]["training"]) < 1e-6 + 0.01 * est["phases"]["training"]
    assert "| training |" in estimate_markdown(again)


@pytest.mark.slow
def test_run_emits_its_estimate_and_every_phase(tiny):
    tmp, overrides = tiny
    estimate(load_config(DEFAULT, overrides))  # the probe is cached: a run only reads it
    result = train(load_config(DEFAULT, overrides))
    assert result.state == "finished", result.message
    events = read_events(result.run_dir / "events.jsonl")[0]
    types = [e["type"] for e in events]
    assert types[0] == "run_started" and types[1] == "estimate" and types[-1] == "finished"
    phases = [e for e in events if e["type"] == "phase"]
    assert [p for p in dict.fromkeys(e["phase"] for e in phases)] == PHASES
    for name in PHASES:  # every phase ends, with its elapsed time
        end = [e for e in phases if e["phase"] == name][-1]
        assert end["done"] == end["total"] and end["elapsed_s"] >= 0
    training = [e for e in phases if e["phase"] == "training"]
    assert training[0]["done"] == 0 and training[-1]["total"] == result_steps(events)
    status = run_status(result.run_dir)
    assert status["phase"] == "done" and set(status["phase_times"]) == set(PHASES)
    assert status["estimate"]["phases"]["training"] > 0
    timing = json.loads((result.run_dir / "metrics.json").read_text())["timing"]
    err = estimate_error(status["estimate"], timing)
    assert err["measured_s"] > 0 and "training" in err["relative_error"]


def result_steps(events) -> int:
    return [e for e in events if e["type"] == "train_step"][-1]["max_steps"]

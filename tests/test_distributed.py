"""Data-parallel training under torchrun on CPUs (gloo): two real processes training the bundled MiniLM.

One 2-process run against a 1-process run with the same global batch and seed; a Stop in the middle of a 2-process
run started the studio's way (core.runs.queue); resuming that run with 2 processes again."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from sentence_transformers import SentenceTransformer

from core.config.schema import load_config
from core.runs.events import read_events
from core.runs.folders import load_run
from core.runs.queue import live_runs, start_training, stop_training
from core.training.launch import Launch, torchrun_command
from core.training.run import train
from tests.conftest import ROOT, copy_bundled, own_training_queue, tiny_overrides, write_jsonl

TIMEOUT = 600
# Two training processes each (torchrun, gloo): `make test` runs this file after the parallel pass, with every core.
pytestmark = pytest.mark.alone


def _events(run_dir: Path) -> list[dict]:
    return read_events(Path(run_dir) / "events.jsonl")[0]


def _cli(overrides: list[str], *flags: str) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        [sys.executable, "-m", "core", "train", *flags, *overrides],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


def _overrides(tmp: Path, rows: list[dict], name: str, **extra) -> list[str]:
    data = write_jsonl(tmp / "pairs.jsonl", rows)
    # The comparison is of the data-parallel math, on 16 test queries where one rank swap moves NDCG@10 by ~0.04:
    # fp32 (not bf16 autocast) and negatives below the positive keep 3 steps at lr 1e-4 from amplifying the
    # summation-order differences between one and two processes into such a swap.
    base = {
        "num_epochs": 1,
        "learning_rate": 1e-4,
        "evaluation.save_best_model": False,
        "evaluation.keep_base_if_worse": False,  # compare the trained weights even where 3 steps made them worse
        "precision": "fp32",
        "mining.margin": 0.05,
    }
    return tiny_overrides(tmp, data, **{**base, **extra}) + [
        f"runs_dir={tmp / name / 'runs'}",
        f"output_dir={tmp / name / 'model'}",
    ]


def _no_dropout_model(dest: Path) -> Path:
    """The bundled MiniLM with dropout off: each process draws its own dropout masks, a noise that over 3 steps moves
    the weights about as far as the training does and would hide what the comparison is about."""
    model = copy_bundled(dest)
    config = json.loads((model / "config.json").read_text())
    config.update(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    (model / "config.json").write_text(json.dumps(config))
    return model


@pytest.fixture(scope="module")
def two_and_one(tmp_path_factory, sample_pairs):
    """The same training with 2 processes x batch 8 (CLI, torchrun) and with 1 process x batch 16."""
    tmp = tmp_path_factory.mktemp("ddp")
    rows = sample_pairs[:64]
    model = _no_dropout_model(tmp / "base")
    out = _cli(_overrides(tmp, rows, "two", batch_size=8, model_name=model), "--nproc", "2").stdout
    one = train(
        load_config("assets/configs/default.yaml", _overrides(tmp, rows, "one", batch_size=16, model_name=model))
    )
    assert one.state == "finished", one.message
    return tmp, out, one


@pytest.mark.slow
def test_two_processes_write_one_run_one_model_one_event_stream(two_and_one):
    tmp, out, _ = two_and_one
    runs = list((tmp / "two" / "runs").iterdir())
    assert len(runs) == 1
    events = _events(runs[0])
    types = [e["type"] for e in events]
    started = [e for e in events if e["type"] == "run_started"]
    assert len(started) == 1 and started[0]["world_size"] == 2 and started[0]["global_batch"] == 16
    assert types.count("finished") == 1 and types[-1] == "finished" and types.count("mining_done") == 1
    assert len([e for e in events if e.get("baseline")]) == 1
    steps = [e["step"] for e in events if e["type"] == "train_step"]
    assert steps == list(range(1, len(steps) + 1)) and steps[-1] == events[-1]["step"]  # each step once, in order
    assert steps[-1] == 3  # 48 training rows / global batch 16
    assert "finished: model saved to" in out and "| ndcg@10 |" in out and "x 2 processes" in out
    assert load_run(runs[0]).settings["processes"] == 2 and load_run(runs[0]).state == "finished"
    model = SentenceTransformer(str(tmp / "two" / "model"))
    assert model.encode(["reset my password"]).shape == (1, 384)


@pytest.mark.slow
def test_two_processes_match_one_with_the_same_global_batch(two_and_one):
    tmp = two_and_one[0]
    weights = {name: SentenceTransformer(str(tmp / name)).state_dict() for name in ("base", "one/model", "two/model")}

    def moved(name: str) -> float:
        x, y = weights["base"], weights[name]
        return sum(float(((x[k] - y[k]) ** 2).sum()) for k in x if x[k].dtype.is_floating_point) ** 0.5

    assert moved("one/model") > 0.1 and moved("two/model") > 0.1  # both trained
    # The same global batches (no duplicates across the ranks' slices), the same gathered in-batch negatives and the
    # same averaged gradient give the same loss at every step, up to summation order. The last batch is exempt: a
    # short last batch is evened out over the ranks by accelerate with rows from the start of the epoch.
    losses = {
        name: [e["loss"] for e in _events(next((tmp / name / "runs").iterdir())) if e["type"] == "train_step"]
        for name in ("one", "two")
    }
    assert len(losses["one"]) == len(losses["two"]) == 3
    assert losses["one"][:-1] == pytest.approx(losses["two"][:-1], abs=1e-4), losses


def _wait_for(run_dir: Path, kind: str, timeout: float = TIMEOUT) -> dict:
    end = time.time() + timeout
    while time.time() < end:
        found = [e for e in _events(run_dir) if e["type"] == kind]
        if found:
            return found[-1]
        if run_dir not in live_runs():
            raise AssertionError(f"the run ended without a {kind} event: {[e['type'] for e in _events(run_dir)]}")
        time.sleep(0.2)
    raise AssertionError(f"no {kind} event within {timeout}s")


@pytest.fixture(scope="module")
def stopped(tmp_path_factory, sample_pairs):
    """A 2-process run started as the studio starts one, stopped after its first checkpoint."""
    tmp = tmp_path_factory.mktemp("ddp_stop")
    overrides = _overrides(
        tmp,
        sample_pairs[:64],
        "stop",
        batch_size=8,
        num_epochs=4,
        **{"evaluation.eval_steps": 3, "evaluation.save_best_model": True},
    )
    with own_training_queue(tmp / "locks") as q:
        run_dir, _ = start_training(load_config("assets/configs/default.yaml", overrides), nproc=2)
        job = next(j for j in q.running if j.run_dir == run_dir)
        _wait_for(run_dir, "checkpoint")
        seen = _wait_for(run_dir, "train_step")["step"]
        asked = time.time()
        stop_training(run_dir)
        job.process.wait(timeout=TIMEOUT)
    return overrides, run_dir, (seen, asked), job


@pytest.mark.slow
def test_stop_ends_every_rank_at_the_same_step_and_keeps_a_model(stopped):
    _, run_dir, (seen, asked), job = stopped
    events = _events(run_dir)
    assert events[-1]["type"] == "stopped" and job.process.returncode == 0
    steps = [e for e in events if e["type"] == "train_step"]
    # Only the step that was running when Stop was asked for ends after it; the ranks agreed on that step.
    assert len([e for e in steps if e["time"] > asked]) <= 1 and steps[-1]["step"] >= seen
    assert events[-1]["step"] == steps[-1]["step"] < steps[-1]["max_steps"]
    workers = [p for p in psutil.process_iter(["cmdline"]) if str(run_dir) in " ".join(p.info["cmdline"] or [])]
    assert not workers  # every rank and the launcher have exited
    assert Path(events[-1]["model_dir"], "config.json").exists()


@pytest.mark.slow
def test_resume_a_two_process_run(stopped):
    overrides, run_dir, _, _ = stopped
    ckpts = sorted((run_dir / "checkpoints").glob("checkpoint-*"), key=lambda p: int(p.name.rsplit("-", 1)[1]))
    _cli(overrides + ["resume=true"], "--nproc", "2")
    events = _events(run_dir)
    starts = [e for e in events if e["type"] == "run_started"]
    assert len(starts) == 2 and all(s["world_size"] == 2 for s in starts)
    assert starts[1]["resume"] == str(ckpts[-1]) and events[-1]["type"] == "finished"
    resumed_from = int(ckpts[-1].name.rsplit("-", 1)[1])
    later = [e["step"] for e in events[events.index(starts[1]) :] if e["type"] == "train_step"]
    assert later[0] == resumed_from + 1 and later[-1] == 12  # 48 rows x 4 epochs / global batch 16


def test_torchrun_command_for_one_and_several_machines(tmp_path):
    one = torchrun_command(Launch(nproc=2), tmp_path)
    assert one[1:3] == ["-m", "torch.distributed.run"] and "--standalone" in one and "--nproc-per-node" in one
    many = torchrun_command(
        Launch(nproc=4, nnodes=2, node_rank=1, master_addr="10.0.0.1", master_port=29511), tmp_path, "ckpt"
    )
    text = " ".join(many)
    assert "--standalone" not in many and "--nnodes 2 --node-rank 1 --master-addr 10.0.0.1 --master-port 29511" in text
    assert text.endswith(f"-m core.training.launch --run-dir {tmp_path} --resume-from ckpt")


def test_several_machines_need_a_shared_run_dir(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "core", "train", "--nproc", "2", "--nnodes", "2", f"runs_dir={tmp_path}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 1 and "--run-dir" in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="CPU-only choices")
def test_studio_offers_two_cpu_processes_only_when_allowed(monkeypatch):
    from core.config.schema import ConfigError
    from studio.plots import progress_html
    from studio.tabs.train import launch, process_choices

    monkeypatch.delenv("STUDIO_ALLOW_CPU_DDP", raising=False)
    assert process_choices() == [1]
    with pytest.raises(ConfigError, match="nproc: 2 processes asked"):
        launch(None, None, {}, None, {"nproc": 2})
    monkeypatch.setenv("STUDIO_ALLOW_CPU_DDP", "1")
    assert process_choices() == [1, 2]
    status = {"state": "running", "run_dir": "/r", "run_id": "r", "step": 1, "max_steps": 4, "world_size": 2}
    assert "2 processes" in progress_html(status)


@pytest.mark.slow
def test_bad_data_fails_every_rank_with_one_clear_event(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"query": "q1", "document": "d1"}\n{"query": "q2"}\n', encoding="utf-8")
    proc = subprocess.run(
        [sys.executable, "-m", "core", "train", "--nproc", "2", *tiny_overrides(tmp_path, bad)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert proc.returncode == 1 and "failed:" in proc.stdout and "line 2" in proc.stdout
    assert "Traceback" not in proc.stdout + proc.stderr
    run_dir = next((tmp_path / "runs").iterdir())
    assert [e["type"] for e in _events(run_dir)] == ["failed"] and (run_dir / "workers.log").exists()
    assert not [p for p in psutil.process_iter(["cmdline"]) if str(run_dir) in " ".join(p.info["cmdline"] or [])]


@pytest.mark.parametrize(
    "settings, expected",
    [({}, "MultipleNegativesRankingLoss"), ({"mini_batch_size": 4}, "CachedMultipleNegativesRankingLoss")],
)
def test_in_batch_negatives_span_every_rank_by_default(monkeypatch, settings, expected):
    from core.config.schema import build_config
    from core.models.load import load_model
    from core.training.losses import build_loss

    model = load_model("sentence-transformers/all-MiniLM-L6-v2", max_seq_length=32)
    assert not build_loss(
        build_config(settings), "pairs", model
    ).gather_across_devices  # one process: nothing to gather
    monkeypatch.setenv("WORLD_SIZE", "2")
    loss = build_loss(build_config(settings), "pairs", model)
    assert type(loss).__name__ == expected and loss.gather_across_devices
    if not settings:  # the length-chunked CPU forward feeds the library's gathering loss
        assert type(loss).forward.__module__ == "core.training.losses"
    off = build_loss(build_config({**settings, "gather_across_devices": False}), "pairs", model)
    assert not off.gather_across_devices

"""Real trainings of the bundled MiniLM on a few dozen rows: the model, metrics, card and event stream they leave."""

from __future__ import annotations

import csv
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml
from sentence_transformers import SentenceTransformer

from core.config.schema import load_config
from core.models.load import load_model
from core.runs.events import read_events
from core.runs.folders import latest_checkpoint, request_stop
from core.training.run import train
from tests.conftest import ROOT, SAMPLES, copy_bundled, read_jsonl, tiny_overrides, write_jsonl

IR_KEYS = {"accuracy@1", "accuracy@5", "accuracy@10", "map@100", "mrr@10", "ndcg@10", "recall@10"}


def _types(run_dir):
    return [e["type"] for e in read_events(run_dir / "events.jsonl")[0]]


@pytest.fixture(scope="module")
def pairs_run(tmp_path_factory, sample_pairs):
    """One run through `make train-embed` with overrides, as a user would type it."""
    tmp = tmp_path_factory.mktemp("pairs")
    data = write_jsonl(tmp / "pairs.jsonl", sample_pairs[:32])
    corpus = tmp / "corpus.txt"
    corpus.write_text("\n".join(r["document"] for r in sample_pairs[100:140]), encoding="utf-8")
    overrides = tiny_overrides(tmp, data, corpus_path=corpus, num_epochs=1) + ["mining.num_negatives=2"]
    proc = subprocess.run(
        ["make", "-s", "train-embed", "EMBED_CONFIG=assets/configs/default.yaml", *overrides],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    run_dir = next((tmp / "runs").iterdir())
    return tmp, run_dir, proc.stdout


@pytest.mark.slow
def test_make_overrides_reach_the_config(pairs_run):
    tmp, run_dir, _ = pairs_run
    cfg = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert cfg["mining"]["num_negatives"] == 2 and cfg["max_seq_length"] == 32 and cfg["batch_size"] == 8
    assert cfg["output_dir"] == str(tmp / "model")


@pytest.mark.slow
def test_cli_prints_progress_and_table(pairs_run):
    _, _, out = pairs_run
    assert "step" in out and "ETA" in out
    assert "mining (encoding): " in out and "texts encoded" in out
    assert "| ndcg@10 |" in out and "finished: model saved to" in out


@pytest.mark.slow
def test_pairs_model_metrics_and_card(pairs_run):
    tmp, run_dir, _ = pairs_run
    model = SentenceTransformer(str(tmp / "model"))  # the seed's step-5 snippet
    emb = model.encode(["How do I reset my password?", "I forgot my password"])
    assert model.similarity(emb, emb).shape == (2, 2)
    metrics = yaml.safe_load((run_dir / "metrics.json").read_text())
    assert IR_KEYS <= set(metrics["before"]) and IR_KEYS <= set(metrics["after"])
    assert metrics["primary"] == "ndcg@10"
    card = (tmp / "model" / "README.md").read_text()
    assert "sentence-transformers/all-MiniLM-L6-v2" in card and "pairs" in card
    assert "| ndcg@10 |" in card and yaml.safe_load((run_dir / "data.json").read_text())["hash"] in card


@pytest.mark.slow
def test_pairs_event_stream_in_order(pairs_run):
    _, run_dir, _ = pairs_run
    events = read_events(run_dir / "events.jsonl")[0]
    types = [e["type"] for e in events]
    assert types[0] == "run_started" and types[-1] == "finished"
    assert types.index("mining_done") < types.index("eval") < types.index("train_step")
    assert {"mining_progress", "checkpoint"} <= set(types)
    steps = [e for e in events if e["type"] == "train_step"]
    assert [s["step"] for s in steps] == sorted(s["step"] for s in steps)
    assert all({"step", "max_steps", "epoch", "loss", "learning_rate", "eta_s"} <= set(s) for s in steps)
    evals = [e for e in events if e["type"] == "eval"]
    assert evals[0]["step"] == 0 and evals[0]["baseline"] and evals[-1]["final"]
    assert events[0]["data"]["format"] == "pairs" and events[0]["config"]["mining"]["num_negatives"] == 2
    assert events[-1]["model_dir"] and "ndcg@10" in events[-1]["metrics"]
    # The mining encode reports texts done of texts in all (queries + candidate documents), with an ETA.
    encoding = [e for e in events if e["type"] == "phase" and e["phase"] == "mining" and 0 < e["done"] < e["total"]]
    assert encoding and encoding[0]["total"] > 40 and encoding[0]["eta_s"] is not None
    # A run of a few steps does not pay for measuring its precision: the machine's probe decides, and says so.
    decided = next(e for e in events if e["type"] == "precision")
    assert types.index("precision") < types.index("train_step") and decided["measured"] is False
    assert decided["precision"] in ("fp32", "bf16") and "steps" in decided["reason"]
    # The default keeps 0.5 of training's change (WiSE-FT) after the last step; the final evaluation measures that.
    merged = next(e for e in events if e["type"] == "merged")
    assert merged["share"] == 0.5 and types.index("merged") > max(i for i, t in enumerate(types) if t == "train_step")
    assert types.index("merged") < len(types) - 1 - types[::-1].index("eval")  # before the final evaluation


@pytest.mark.slow
def test_mined_rows_keep_scores(pairs_run):
    _, run_dir, _ = pairs_run
    mined = pd.read_parquet(run_dir / "mined.parquet")
    assert {
        "query",
        "positive",
        "negative",
        "rank",
        "positive_score",
        "negative_score",
        "gap",
        "suspected_false_negative",
    } <= set(mined.columns)
    assert len(mined) > 0 and mined["rank"].max() <= 1
    assert (mined["gap"] - (mined["positive_score"] - mined["negative_score"])).abs().max() < 1e-6
    stats = yaml.safe_load((run_dir / "mining_stats.json").read_text())
    assert stats["corpus_size"] > 32  # the extra corpus was mined too
    assert "skipped_by_margin" in stats and "rows_without_enough_negatives" in stats


@pytest.mark.slow
def test_triplets_train_with_their_negatives(tmp_path):
    rows = read_jsonl(SAMPLES / "it_helpdesk_triplets.jsonl")[:24]
    data = write_jsonl(tmp_path / "t.jsonl", rows)
    cfg = load_config("assets/configs/default.yaml", tiny_overrides(tmp_path, data, matryoshka_dims="[384,128]"))
    r = train(cfg)
    assert r.state == "finished", r.message
    assert "triplet_accuracy" in r.after and "ndcg@10" in r.after
    assert "MatryoshkaLoss over MultipleNegativesRankingLoss" in (tmp_path / "model" / "README.md").read_text()
    table = pd.read_parquet(r.run_dir / "train_table.parquet")
    assert list(table.columns) == ["query", "positive", "negative"]  # given negatives kept, nothing mined
    assert not (r.run_dir / "mined.parquet").exists()
    SentenceTransformer(r.model_dir)


@pytest.mark.slow
def test_scored_pairs_train_with_cosent(tmp_path):
    with open(SAMPLES / "it_helpdesk_scored.csv", newline="") as f:
        rows = list(csv.DictReader(f))[:40]
    data = tmp_path / "s.csv"
    with open(data, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["doc1", "doc2", "similarity"])
        w.writeheader()
        w.writerows(rows)
    cfg = load_config("assets/configs/default.yaml", tiny_overrides(tmp_path, data, report_to="tensorboard"))
    r = train(cfg)
    assert r.state == "finished", r.message
    assert list((r.run_dir / "tensorboard").rglob("events.out.tfevents.*"))  # TensorBoard logs in the run folder
    assert "spearman" in r.before and "spearman" in r.after
    assert "CoSENTLoss" in (tmp_path / "model" / "README.md").read_text()
    assert "mining_done" not in _types(r.run_dir)


def _stopped_at_step_3(tmp_path, overrides: list[str]):
    """Train in a thread and ask it to stop once it has logged step 3; the run's result."""
    cfg = load_config("assets/configs/default.yaml", overrides)
    box = {}
    worker = threading.Thread(target=lambda: box.setdefault("r", train(cfg)))
    worker.start()
    deadline = time.time() + 300
    while time.time() < deadline and worker.is_alive():
        runs = list((tmp_path / "runs").glob("*")) if (tmp_path / "runs").exists() else []
        if runs:
            steps = [e for e in read_events(runs[0] / "events.jsonl")[0] if e["type"] == "train_step"]
            if steps and steps[-1]["step"] >= 3:
                request_stop(runs[0])
                break
        time.sleep(0.2)
    worker.join(300)
    return box["r"]


@pytest.mark.slow
def test_a_stopped_run_with_its_best_checkpoint_is_measured_on_the_whole_corpus(tmp_path, sample_pairs):
    """Evaluations during training saw a bounded corpus (5 documents here): a stopped run reports a fresh
    evaluation of the checkpoint it kept against the baseline's whole corpus, not the last bounded figures."""
    data = write_jsonl(tmp_path / "p.jsonl", sample_pairs[:40])
    extra = {"evaluation.eval_steps": 2, "evaluation.save_best_model": True, "evaluation.max_corpus_size": 5}
    r = _stopped_at_step_3(tmp_path, tiny_overrides(tmp_path, data, batch_size=4, **extra))
    assert r.state == "stopped", r.message
    evals = [e for e in read_events(r.run_dir / "events.jsonl")[0] if e["type"] == "eval"]
    assert any(not e.get("baseline") and not e.get("final") for e in evals)  # it evaluated during training
    assert evals[-1].get("final") and evals[-1]["metrics"] == r.after


@pytest.mark.slow
def test_stop_then_resume(tmp_path, sample_pairs):
    data = write_jsonl(tmp_path / "p.jsonl", sample_pairs[:40])
    overrides = tiny_overrides(tmp_path, data, batch_size=4, **{"evaluation.eval_steps": 2})
    r = _stopped_at_step_3(tmp_path, overrides)
    assert r.state == "stopped", r.message
    assert _types(r.run_dir)[-1] == "stopped"
    SentenceTransformer(r.model_dir)  # the weights trained so far are kept
    events = read_events(r.run_dir / "events.jsonl")[0]
    evals = [e for e in events if e["type"] == "eval"]
    assert evals[-1]["step"] == events[-1]["step"]  # and measured at that step, not an earlier evaluation's figures
    ckpt = latest_checkpoint(r.run_dir)
    assert ckpt is not None
    stopped_at = [e for e in read_events(r.run_dir / "events.jsonl")[0] if e["type"] == "train_step"][-1]

    resumed = train(load_config("assets/configs/default.yaml", overrides + ["resume=true"]))
    assert resumed.state == "finished", resumed.message
    assert resumed.run_dir == r.run_dir  # the same run continues
    events = read_events(r.run_dir / "events.jsonl")[0]
    starts = [e for e in events if e["type"] == "run_started"]
    assert len(starts) == 2 and starts[1]["resume"] == str(ckpt)
    later = [e for e in events[events.index(starts[1]) :] if e["type"] == "train_step"]
    assert later[0]["step"] > int(ckpt.name.split("-")[1]) and later[-1]["step"] == later[-1]["max_steps"]
    assert later[-1]["max_steps"] == stopped_at["max_steps"]


def test_failures_are_clean_events(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"query": "a", "document": "b"}\n{"query": "", "document": "c"}\n')
    r = train(load_config(None, tiny_overrides(tmp_path, bad)))
    assert r.state == "failed" and "line 2" in r.message and "query" in r.message
    events = read_events(r.run_dir / "events.jsonl")[0]
    assert events[-1]["type"] == "failed" and "Traceback" not in events[-1]["message"]
    assert "Traceback" in (r.run_dir / "train.log").read_text()  # details go to the log

    r = train(load_config(None, tiny_overrides(tmp_path, bad, model_name="nobody/no-such-model")))
    assert r.state == "failed" and "nobody/no-such-model" in r.message


def test_cli_train_with_bad_model_exits_nonzero_without_traceback(tmp_path, sample_pairs):
    data = write_jsonl(tmp_path / "p.jsonl", sample_pairs[:20])
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "core",
            "train",
            "--config",
            "assets/configs/default.yaml",
            *tiny_overrides(tmp_path, data, model_name="nobody/no-such-model"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 1
    assert "nobody/no-such-model" in proc.stdout and "Traceback" not in proc.stdout + proc.stderr


@pytest.mark.slow
def test_eval_and_infer_commands_use_the_trained_model(pairs_run):
    tmp, _, _ = pairs_run
    model = str(tmp / "model")
    proc = subprocess.run(
        [sys.executable, "-m", "core", "eval", "--model", model, "--data", str(tmp / "pairs.jsonl"), "--baseline"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "| ndcg@10 |" in proc.stdout and "32 test rows" in proc.stdout
    proc = subprocess.run(
        ["make", "-s", "infer-embed", f"MODEL={model}", f"CORPUS={tmp / 'corpus.txt'}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "[" + model + "]" in proc.stdout and " 1. " in proc.stdout


@pytest.mark.slow
def test_the_default_keeps_the_final_weights_not_the_best_evaluated_checkpoint(tmp_path, sample_pairs):
    data = write_jsonl(tmp_path / "p.jsonl", sample_pairs[:40])
    cfg = load_config(
        "assets/configs/default.yaml",
        tiny_overrides(
            tmp_path, data, batch_size=4, **{"evaluation.eval_steps": 1, "evaluation.keep_base_if_worse": False}
        ),
    )
    assert cfg.evaluation.save_best_model is False  # the schema default
    r = train(cfg)
    assert r.state == "finished", r.message
    events = read_events(r.run_dir / "events.jsonl")[0]
    last = max(e["step"] for e in events if e["type"] == "checkpoint")
    assert last == [e for e in events if e["type"] == "train_step"][-1]["max_steps"]
    # evaluated every step as asked (eval_steps=1), then the final evaluation measures the merged weights
    during = [e["step"] for e in events if e["type"] == "eval" and e.get("partial")]
    assert during == list(range(1, last + 1)) and [e for e in events if e["type"] == "eval"][-1]["final"]
    # what is kept is the final step's weights, of which the default (merge_with_base 0.5) keeps 0.5 of the change
    final = SentenceTransformer(str(r.run_dir / "checkpoints" / f"checkpoint-{last}"), device="cpu").state_dict()
    kept = SentenceTransformer(r.model_dir, device="cpu").state_dict()
    base = load_model(cfg.model_name).state_dict()
    assert cfg.merge_with_base == 0.5 and any((final[k] != base[k]).any() for k in final)
    for k, w in kept.items():
        if w.is_floating_point():
            torch.testing.assert_close(w, base[k] + 0.5 * (final[k] - base[k]), atol=1e-5, rtol=1e-4)


@pytest.mark.slow
def test_early_stopping_ends_a_run_that_stops_improving(tmp_path, sample_pairs):
    data = write_jsonl(tmp_path / "p.jsonl", sample_pairs[:40])
    # A learning rate far too high wrecks the model after the first evaluation, so NDCG@10 stops improving.
    cfg = load_config(
        "assets/configs/default.yaml",
        tiny_overrides(
            tmp_path,
            data,
            batch_size=4,
            learning_rate=0.3,
            warmup_ratio=0,
            **{"evaluation.eval_steps": 1, "evaluation.early_stopping_patience": 1},
        ),
    )
    earlier = copy_bundled(Path(cfg.output_dir))  # an earlier model in output_dir: a worse run must leave it
    (earlier / "earlier.txt").write_text("the last good model", encoding="utf-8")
    r = train(cfg)
    assert r.state == "finished", r.message
    steps = [e for e in read_events(r.run_dir / "events.jsonl")[0] if e["type"] == "train_step"]
    assert steps[-1]["step"] < steps[-1]["max_steps"]  # ended early
    # Every checkpoint was worse than the untrained model, so "the best model" is the base model.
    metrics = yaml.safe_load((r.run_dir / "metrics.json").read_text())
    assert metrics["kept_base_model"] and metrics["after"] == metrics["before"]
    last = read_events(r.run_dir / "events.jsonl")[0][-1]["message"]
    assert "did not beat the base model" in last and "keeps the model it held" in last
    assert (earlier / "earlier.txt").exists() and Path(r.model_dir) == r.run_dir / "model"


@pytest.mark.slow
def test_ctrl_c_stops_the_cli_and_keeps_a_model(tmp_path, sample_pairs):
    data = write_jsonl(tmp_path / "p.jsonl", sample_pairs[:48])
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "core",
            "train",
            "--config",
            "assets/configs/default.yaml",
            *tiny_overrides(tmp_path, data, batch_size=4, num_epochs=2),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        runs = list((tmp_path / "runs").glob("*/events.jsonl")) if (tmp_path / "runs").exists() else []
        if runs and any(e["type"] == "train_step" for e in read_events(runs[0])[0]):
            proc.send_signal(signal.SIGINT)
            break
        time.sleep(0.2)
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, out[-2000:]
    assert "stopped: model saved to" in out and "Traceback" not in out
    SentenceTransformer(str(tmp_path / "model"))


def test_automatic_evaluation_schedule_follows_its_cost():
    from core.config.schema import EmbedConfig
    from core.evaluation.schedule import eval_steps as _eval_steps

    cfg = EmbedConfig()
    # 56 steps of 32 (query, positive, negative) rows vs a 1,000-text evaluation: 15% of the training buys 2 of them.
    assert _eval_steps(cfg, 56, 3, 1000) == 28
    # An evaluation as big as the whole training run, or only one affordable: nothing until the final evaluation.
    assert _eval_steps(cfg, 17, 3, 1100) is None
    assert _eval_steps(cfg, 42, 2, 1150) is None
    # Cheap evaluations: the usual 4 per run.
    assert _eval_steps(cfg, 100, 2, 50) == 25
    # Early stopping needs evaluations whatever they cost; an explicit eval_steps is obeyed.
    assert _eval_steps(EmbedConfig(evaluation={"early_stopping_patience": 2}), 17, 3, 1100) == 5
    assert _eval_steps(EmbedConfig(evaluation={"eval_steps": 3}), 17, 3, 1100) == 3

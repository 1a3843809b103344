"""The seed guide's recipes as written: its YAML blocks (tests/fixtures/guide, copies of its text), metric families and the one meaning of `preset` (defaults < preset < keys set in the file < overrides)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from core.cli.manage import SEED_CONFIG
from core.config.schema import (
    METRIC_FAMILIES,
    PRESETS,
    ConfigError,
    EmbedConfig,
    apply_preset,
    build_config,
    load_config,
)
from core.evaluation.evaluators import metrics_table
from core.models.choices import model_choices
from core.runs.folders import MINED_FILE
from tests import guide_text
from tests.conftest import ROOT, tiny_overrides, write_jsonl

GUIDE = ROOT / "tests" / "fixtures" / "guide"  # copies of the guide's text (tests/guide_text.py checks them)
BLOCKS = sorted(GUIDE.glob("*.yaml"))
FAST = PRESETS["fast"]


def core_cli(*args: str, timeout: int = 60) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "core", *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout
    )


def alternatives(block: Path) -> list[str]:
    """A block's choices: the guide separates them by a blank line, each under its own comment."""
    return [part for part in block.read_text(encoding="utf-8").split("\n\n") if yaml.safe_load(part)]


@pytest.mark.skipif(not guide_text.GUIDE.is_file(), reason=guide_text.MISSING)
def test_guide_fixtures_are_the_guides_text():
    names = {
        "Model Selection": "model_selection.yaml",
        "Training Parameters": "training_parameters.yaml",
        "Domain-Specific Models": "domain_specific_models.yaml",
        "Hard Negative Mining": "hard_negative_mining.yaml",
        "Evaluation Metrics": "evaluation_metrics.yaml",
    }
    found = guide_text.blocks("yaml")
    assert [h for h, _ in found] == list(names)  # a block added to the guide needs a fixture and a check
    for heading, body in found:
        assert (GUIDE / names[heading]).read_text(encoding="utf-8") == body, heading
    files = guide_text.heredocs()
    assert (GUIDE / "step3_my_embedding.yaml").read_text(encoding="utf-8") == files[
        "embeddingFT/configs/my_embedding.yaml"
    ]
    assert (GUIDE / "step1_embedding_dataset.jsonl").read_text(encoding="utf-8") == files[
        "data/raw/embedding_dataset.jsonl"
    ]


def test_setup_dirs_writes_the_guides_step3_config():
    assert (GUIDE / "step3_my_embedding.yaml").read_text(encoding="utf-8") == SEED_CONFIG


@pytest.mark.parametrize("block", BLOCKS, ids=lambda p: p.stem)
def test_each_guide_block_passes_core_config(block):
    """A block pasted whole: a key given again wins, so a block of choices resolves to its last choice."""
    r = core_cli("config", str(block))
    assert r.returncode == 0, r.stderr
    out = yaml.safe_load(r.stdout)
    last = yaml.safe_load(alternatives(block)[-1])
    for key, value in last.items():
        got = out[key]
        # metric families expand (test_metric_families_select_their_keys)
        assert got == value or all(got[k] == v for k, v in value.items() if k != "metrics"), key


@pytest.mark.parametrize("block", BLOCKS, ids=lambda p: p.stem)
def test_each_choice_of_a_guide_block_is_a_valid_config(block):
    for part in alternatives(block):
        cfg = build_config(yaml.safe_load(part)).to_dict()
        for key, value in yaml.safe_load(part).items():
            if isinstance(value, dict):
                assert all(cfg[key][k] == v for k, v in value.items() if k != "metrics"), part
            elif key != "learning_rate":  # `3e-5` is text to YAML 1.1; the schema reads it as a number
                assert cfg[key] == value, part
            else:
                assert cfg[key] == float(value), part


def test_guide_blocks_combined_pass_core_config(tmp_path):
    """Step 3 + one choice of each block + the mining and evaluation blocks, in one file."""
    read = lambda name: (GUIDE / name).read_text(encoding="utf-8")  # noqa: E731
    models = alternatives(GUIDE / "model_selection.yaml") + alternatives(GUIDE / "domain_specific_models.yaml")
    for model in models:
        for params in alternatives(GUIDE / "training_parameters.yaml"):
            text = "\n".join(
                [
                    read("step3_my_embedding.yaml"),
                    model,
                    params,
                    read("hard_negative_mining.yaml"),
                    read("evaluation_metrics.yaml"),
                ]
            )
            path = tmp_path / "combined.yaml"
            path.write_text(text, encoding="utf-8")
            cfg = load_config(path)  # the same code path as `python -m core config`, without a process per file
            assert cfg.model_name == yaml.safe_load(model)["model_name"] and cfg.mining.num_negatives == 3
    r = core_cli("config", str(path))
    assert r.returncode == 0, r.stderr
    out = yaml.safe_load(r.stdout)
    assert out["gradient_checkpointing"] is True and out["batch_size"] == 8
    assert out["mining"]["range_max"] == 100 and out["evaluation"]["eval_steps"] == 100


def test_metric_families_select_their_keys():
    cfg = load_config(GUIDE / "evaluation_metrics.yaml")
    assert cfg.evaluation.metrics == ["accuracy@1", "accuracy@5", "accuracy@10", "map@100", "mrr@10", "ndcg@10"]
    assert build_config({"evaluation": {"metrics": ["recall", "ndcg@10", "NDCG"]}}).evaluation.metrics == [
        "recall@10",
        "ndcg@10",
    ]
    assert set(METRIC_FAMILIES) == {"accuracy", "map", "mrr", "ndcg", "recall"}
    with pytest.raises(ConfigError, match="unknown metric"):
        build_config({"evaluation": {"metrics": ["precision"]}})
    before, after = {"ndcg@10": 0.5, "mrr@10": 0.4, "spearman": 0.1}, {"ndcg@10": 0.6, "mrr@10": 0.5}
    table = metrics_table(before, after, ["mrr@10"])
    assert "| mrr@10 |" in table and "ndcg@10" not in table and "spearman" not in table
    assert "| spearman |" in metrics_table({"spearman": 0.2}, {"spearman": 0.3}, ["ndcg@10"])  # scored data


def test_preset_precedence(tmp_path):
    restating = tmp_path / "restating.yaml"  # a file that restates defaults does not cancel a command-line preset
    restating.write_text(
        "num_epochs: 1\nbatch_size: 32\nlearning_rate: 4e-5\nseed: 7\nmining:\n  num_negatives: 1\n", encoding="utf-8"
    )
    cfg = load_config(restating, ["preset=quality"])
    assert (cfg.num_epochs, cfg.batch_size, cfg.learning_rate, cfg.mining.num_negatives, cfg.seed) == (
        8,
        16,
        1e-5,
        2,
        7,
    )
    assert load_config(restating, ["preset=fast"]).mining.num_negatives == 0  # a nested key of a preset too
    chosen = tmp_path / "chosen.yaml"  # a value the file chose beats the preset; an override beats both
    chosen.write_text("preset: quality\nnum_epochs: 3\nmining:\n  num_negatives: 3\n", encoding="utf-8")
    cfg = load_config(chosen, ["batch_size=4"])
    assert (cfg.num_epochs, cfg.batch_size, cfg.learning_rate) == (3, 4, PRESETS["quality"]["learning_rate"])
    assert (cfg.mining.num_negatives, load_config(chosen, ["preset=fast"]).mining.num_negatives) == (3, 3)
    default = load_config(ROOT / "assets" / "configs" / "default.yaml", ["preset=quality"])
    assert (default.num_epochs, default.batch_size, default.learning_rate, default.mining.num_negatives) == (
        8,
        16,
        1e-5,
        2,
    )
    r = core_cli("config", "--config", "assets/configs/default.yaml", "preset=fast")
    out = yaml.safe_load(r.stdout)
    assert r.returncode == 0 and out["mining"]["num_negatives"] == 0 and out["mining"]["batch_size"] == 16, r.stderr
    # The studio applies a preset to its form by the same rule: values the form chose stay.
    form = EmbedConfig(num_epochs=5).to_dict()
    applied = apply_preset(apply_preset(form, "fast"), "quality")
    assert (applied["num_epochs"], applied["batch_size"], applied["learning_rate"]) == (5, 16, 1e-5)
    assert applied["mining"] == {**form["mining"], "num_negatives": 2}  # the rest of the block is kept
    assert apply_preset(applied, "balanced")["mining"]["num_negatives"] == 1
    assert apply_preset(EmbedConfig(mining={"num_negatives": 4}).to_dict(), "fast")["mining"]["num_negatives"] == 4
    assert apply_preset(EmbedConfig().to_dict(), "memory")["mini_batch_size"] == 8


def test_default_yaml_sets_only_keys_that_differ_from_the_schema():
    data = yaml.safe_load((ROOT / "assets" / "configs" / "default.yaml").read_text(encoding="utf-8"))
    defaults = EmbedConfig().to_dict()
    assert data and all(defaults.get(k) != v for k, v in data.items()), data


@pytest.mark.slow
def test_make_train_embed_preset_fast_trains_with_the_fast_values(tmp_path, sample_pairs):
    data = write_jsonl(tmp_path / "pairs.jsonl", sample_pairs[:16])
    venv = Path(sys.executable).parents[1]
    # mining.num_negatives is left to the preset; the rest keeps the run tiny.
    overrides = [o for o in tiny_overrides(tmp_path, data) if not o.startswith("mining.num_negatives=")]
    # -o: the venv running this test is installed already; make must not reinstall it.
    proc = subprocess.run(
        [
            "make",
            "-s",
            "-o",
            f"{venv}/.installed",
            f"VENV={venv}",
            "train-embed",
            "EMBED_CONFIG=assets/configs/default.yaml",
            "preset=fast",
            *overrides,
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    run_dir = next((tmp_path / "runs").iterdir())
    cfg = yaml.safe_load((run_dir / "config.yaml").read_text(encoding="utf-8"))
    assert cfg["mining"]["num_negatives"] == FAST["mining.num_negatives"] == 0
    assert not (run_dir / MINED_FILE).exists()  # nothing mined: the preset's time saving


def test_fewer_than_5_queries_evaluate_on_the_training_pairs(tmp_path, sample_pairs):
    from core.training.run import train

    data = write_jsonl(tmp_path / "four.jsonl", sample_pairs[:4])
    r = train(load_config(None, tiny_overrides(tmp_path, data, test_size=100, **{"mining.num_negatives": 0})))
    assert r.state == "finished", r.message
    info = yaml.safe_load((r.run_dir / "data.json").read_text(encoding="utf-8"))
    assert (info["train_rows"], info["test_rows"]) == (4, 4)
    assert any("evaluating on the training pairs" in w for w in info["warnings"])
    assert not any("overlap" in w for w in info["warnings"]) and "ndcg@10" in r.after


def test_the_pickers_offer_every_model_the_guide_names_with_its_role():
    offered = {c["value"]: c for c in model_choices(None, None, None)}
    for name in ("model_selection.yaml", "domain_specific_models.yaml"):
        for part in alternatives(GUIDE / name):
            comment = part.strip().splitlines()[0].lstrip("# ")  # "Fast training (smaller model)", "Legal domain"
            model = yaml.safe_load(part)["model_name"]
            label = offered[model]["label"]
            role = label.split("guide: ", 1)[1].split(" ·")[0].split("]")[0]
            assert role.split()[0].lower() in comment.lower(), (model, label, comment)
            assert ("needs download" in label) == (not offered[model]["cached"])

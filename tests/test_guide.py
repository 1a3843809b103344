"""The seed guide's recipes as written: its YAML blocks (tests/fixtures/guide), the walk-through on its 8 toy pairs,
metric families and the one meaning of `preset` (defaults < preset < keys set in the file < overrides)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from sentence_transformers import SentenceTransformer

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
from tests.conftest import ROOT, tiny_overrides, write_jsonl

GUIDE = ROOT / "tests" / "fixtures" / "guide"
BLOCKS = sorted(GUIDE.glob("*.yaml"))
FAST = PRESETS["fast"]


def core_cli(*args: str, timeout: int = 60) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "core", *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout
    )


def test_guide_fixtures_are_the_shipped_step3_config():
    assert (GUIDE / "step3_config.yaml").read_text(encoding="utf-8") == SEED_CONFIG
    assert len(BLOCKS) >= 10


@pytest.mark.parametrize("block", BLOCKS, ids=lambda p: p.stem)
def test_each_guide_block_passes_core_config(block):
    r = core_cli("config", str(block))
    assert r.returncode == 0, r.stderr
    assert yaml.safe_load(r.stdout)["evaluation"]["metrics"]


def test_guide_blocks_combined_pass_core_config(tmp_path):
    """Step 3 + a model + a preset + a domain + the mining and evaluation blocks, in one file."""
    for model in ("model_static", "model_e5", "model_bge"):
        for preset in ("preset_fast", "preset_balanced", "preset_quality"):
            names = ["step3_config", model, preset, "domain_medical", "mining", "evaluation"]
            text = "\n".join((GUIDE / f"{n}.yaml").read_text(encoding="utf-8") for n in names)
            path = tmp_path / f"{model}_{preset}.yaml"
            path.write_text(text, encoding="utf-8")
            cfg = load_config(path)  # the same code path as `python -m core config`, without a process per file
            assert cfg.model_name == "pritamdeka/S-PubMedBert-MS-MARCO" and cfg.mining.num_negatives == 5
    r = core_cli("config", str(path))
    assert r.returncode == 0, r.stderr
    out = yaml.safe_load(r.stdout)
    assert out["num_epochs"] == 5 and out["mining"]["range_min"] == 10 and out["evaluation"]["eval_steps"] == 100


def test_metric_families_select_their_keys():
    cfg = load_config(GUIDE / "evaluation.yaml")
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
    restating.write_text("num_epochs: 1\nbatch_size: 32\nlearning_rate: 2e-5\nseed: 7\n", encoding="utf-8")
    cfg = load_config(restating, ["preset=fast"])
    assert (cfg.num_epochs, cfg.batch_size, cfg.learning_rate, cfg.seed) == (2, 64, 3e-5, 7)
    chosen = tmp_path / "chosen.yaml"  # a value the file chose beats the preset; an override beats both
    chosen.write_text("preset: quality\nnum_epochs: 3\n", encoding="utf-8")
    cfg = load_config(chosen, ["batch_size=4"])
    assert (cfg.num_epochs, cfg.batch_size, cfg.learning_rate) == (3, 4, PRESETS["quality"]["learning_rate"])
    assert load_config(chosen, ["preset=fast"]).num_epochs == 3
    default = load_config(ROOT / "assets" / "configs" / "default.yaml", ["preset=fast"])
    assert (default.num_epochs, default.batch_size, default.learning_rate) == (2, 64, 3e-5)
    r = core_cli("config", "--config", "assets/configs/default.yaml", "preset=fast")
    out = yaml.safe_load(r.stdout)
    assert r.returncode == 0 and (out["num_epochs"], out["batch_size"], out["learning_rate"]) == (2, 64, 3e-5)
    # The studio applies a preset to its form by the same rule: values the form chose stay.
    form = EmbedConfig(num_epochs=5).to_dict()
    applied = apply_preset(apply_preset(form, "fast"), "quality")
    assert (applied["num_epochs"], applied["batch_size"], applied["learning_rate"]) == (5, 16, 1e-5)
    assert apply_preset(EmbedConfig().to_dict(), "memory")["mini_batch_size"] == 8


def test_default_yaml_sets_only_keys_that_differ_from_the_schema():
    data = yaml.safe_load((ROOT / "assets" / "configs" / "default.yaml").read_text(encoding="utf-8"))
    defaults = EmbedConfig().to_dict()
    assert data and all(defaults.get(k) != v for k, v in data.items()), data


@pytest.mark.slow
def test_make_train_embed_preset_fast_trains_with_the_fast_values(tmp_path, sample_pairs):
    data = write_jsonl(tmp_path / "pairs.jsonl", sample_pairs[:16])
    venv = Path(sys.executable).parents[1]
    # batch_size, num_epochs and learning_rate are left to the preset; the rest keeps the run tiny.
    overrides = [
        o for o in tiny_overrides(tmp_path, data, **{"mining.num_negatives": 0}) if not o.startswith("batch_size=")
    ]
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
    assert (cfg["num_epochs"], cfg["batch_size"], cfg["learning_rate"]) == (
        FAST["num_epochs"],
        FAST["batch_size"],
        FAST["learning_rate"],
    )


@pytest.mark.slow
def test_seed_walkthrough_step3_config_on_the_8_toy_pairs(tmp_path):
    """`make setup-embed-dirs` then training with its starter config: capped sizes, a warning each, a saved model."""
    r = core_cli("setup-dirs", "--root", str(tmp_path / "embeddingFT"))
    assert r.returncode == 0, r.stderr
    config = tmp_path / "embeddingFT" / "configs" / "my_embedding.yaml"
    r = core_cli("validate-config", "--config", str(config))  # step 3: checked before training, caps announced
    assert r.returncode == 0 and "warning: test_size=100 is larger than the data" in r.stdout, r.stdout + r.stderr
    r = core_cli(
        "train",
        "--config",
        str(config),
        f"output_dir={tmp_path / 'model'}",
        f"runs_dir={tmp_path / 'runs'}",
        f"cache_dir={tmp_path / 'cache'}",
        timeout=600,
    )
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert "warning: sample_size=500 is larger than the data: used all 8 rows" in r.stdout
    assert "warning: test_size=100 is larger than the data (8 rows): used 1 of 8 queries" in r.stdout
    assert "7 train / 1 test" in r.stdout and "finished: model saved to" in r.stdout
    table = r.stdout[r.stdout.index("| metric |") :]
    assert "| accuracy@1 |" in table and "triplet_accuracy" not in table
    assert SentenceTransformer(str(tmp_path / "model"), device="cpu").encode(["vector database"]).shape == (1, 384)


def test_fewer_than_5_queries_evaluate_on_the_training_pairs(tmp_path, sample_pairs):
    from core.training.run import train

    data = write_jsonl(tmp_path / "four.jsonl", sample_pairs[:4])
    r = train(load_config(None, tiny_overrides(tmp_path, data, test_size=100, **{"mining.num_negatives": 0})))
    assert r.state == "finished", r.message
    info = yaml.safe_load((r.run_dir / "data.json").read_text(encoding="utf-8"))
    assert (info["train_rows"], info["test_rows"]) == (4, 4)
    assert any("evaluating on the training pairs" in w for w in info["warnings"])
    assert not any("overlap" in w for w in info["warnings"]) and "ndcg@10" in r.after

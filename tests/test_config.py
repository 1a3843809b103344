from __future__ import annotations

import re
from pathlib import Path

import pytest

from core.config.schema import (
    PRESETS,
    ConfigError,
    EmbedConfig,
    build_config,
    config_diff,
    config_from_yaml_text,
    field_specs,
    get_key,
    load_config,
    parse_overrides,
)


def test_defaults_are_the_balanced_recipe():
    cfg = EmbedConfig()
    assert cfg.model_name == "sentence-transformers/all-MiniLM-L6-v2"
    assert cfg.mining_model_name is None  # = the base model
    assert cfg.output_dir == "outputs/embedding_model"
    assert cfg.mining.sampling_strategy == "top"
    assert "ndcg@10" in cfg.evaluation.metrics


def test_yaml_with_seed_keys_loads(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(
        "dataset_name: toy\nsample_size: 100\ntest_size: 0.2\nseed: 7\nmodel_name: all-MiniLM-L6-v2\n"
        "mining_model_name: all-MiniLM-L6-v2\nnum_epochs: 3\nbatch_size: 16\nlearning_rate: 1e-5\n"
        "weight_decay: 0.0\nwarmup_ratio: 0.05\ncache_dir: /tmp/embedding_cache\ngradient_checkpointing: true\n"
        "mining:\n  num_negatives: 5\n  batch_size: 8\n  margin: 0.1\n  range_min: 2\n  range_max: 30\n"
        "  sampling_strategy: random\nevaluation:\n  metrics: [ndcg@10, mrr@10]\n  eval_steps: 10\n"
        "  save_best_model: false\n  early_stopping_patience: 2\n"
    )
    cfg = load_config(path)
    assert cfg.learning_rate == 1e-5 and cfg.num_epochs == 3 and cfg.gradient_checkpointing
    assert cfg.mining.num_negatives == 5 and cfg.mining.sampling_strategy == "random"
    assert cfg.evaluation.eval_steps == 10 and cfg.evaluation.early_stopping_patience == 2


def test_overrides_nested_and_coerced(tmp_path):
    cfg = load_config(
        None,
        [
            "num_epochs=3",
            "mining.num_negatives=5",
            "learning_rate=3e-5",
            "gradient_checkpointing=true",
            "evaluation.eval_steps=null",
            "matryoshka_dims=[384, 128]",
        ],
    )
    assert cfg.num_epochs == 3 and cfg.mining.num_negatives == 5 and cfg.learning_rate == 3e-5
    assert cfg.gradient_checkpointing is True and cfg.evaluation.eval_steps is None
    assert cfg.matryoshka_dims == [384, 128]
    assert parse_overrides(["a.b.c=1"]) == {"a": {"b": {"c": 1}}}


def test_override_beats_file_beats_preset(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("preset: quality\nbatch_size: 48\n")
    cfg = load_config(path, ["learning_rate=1e-4"])
    assert cfg.num_epochs == PRESETS["quality"]["num_epochs"]  # from the preset
    assert cfg.mining.num_negatives == PRESETS["quality"]["mining.num_negatives"]  # a nested key too
    assert cfg.batch_size == 48  # the file wins over the preset
    assert cfg.learning_rate == 1e-4  # the override wins over both


def test_a_new_dataset_path_renames_the_run_label():
    cfg = load_config("assets/configs/default.yaml", ["dataset_path=data/medquad_pairs.jsonl"])
    assert cfg.dataset_name == "medquad_pairs"  # not the file's it_helpdesk_sample: run folders and the card use it
    cfg = load_config("assets/configs/default.yaml", ["dataset_path=data/x.jsonl", "dataset_name=my_label"])
    assert cfg.dataset_name == "my_label"
    assert load_config("assets/configs/default.yaml").dataset_name == "it_helpdesk_sample"


def test_unknown_key_suggests_closest():
    with pytest.raises(ConfigError) as e:
        load_config(None, ["num_epoch=2"])
    assert "unknown key 'num_epoch'" in str(e.value) and "did you mean 'num_epochs'" in str(e.value)
    with pytest.raises(ConfigError) as e:
        load_config(None, ["mining.num_negative=2"])
    assert "mining.num_negatives" in str(e.value)


@pytest.mark.parametrize(
    "item, key",
    [
        ("batch_size=abc", "batch_size"),
        ("batch_size=0", "batch_size"),
        ("learning_rate=-1", "learning_rate"),
        ("mining.sampling_strategy=best", "mining.sampling_strategy"),
        ("mining.range_max=0", "mining.range_max"),
        ("warmup_ratio=2", "warmup_ratio"),
        ("evaluation.metrics=[ndcg@11]", "evaluation.metrics"),
        ("test_size=2.5", "test_size"),
    ],
)
def test_bad_values_name_the_key(item, key):
    with pytest.raises(ConfigError) as e:
        load_config(None, [item])
    assert any(line.startswith(key) for line in e.value.errors), e.value.errors


def test_malformed_override_and_unknown_preset():
    with pytest.raises(ConfigError, match="not key=value"):
        load_config(None, ["num_epochs"])
    with pytest.raises(ConfigError, match="unknown preset"):
        load_config(None, ["preset=turbo"])


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_presets(name):
    cfg = build_config({"preset": name})
    for key, value in PRESETS[name].items():
        assert get_key(cfg.to_dict(), key) == value
    if name == "memory":
        assert cfg.gradient_checkpointing and cfg.mini_batch_size  # cached loss: big batch, small memory


def test_bad_yaml_names_the_line(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("num_epochs: 2\nmining:\n  num_negatives: [1\n")
    with pytest.raises(ConfigError) as e:
        load_config(path)
    assert "line" in str(e.value) and str(path) in str(e.value)
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "missing.yaml")
    (tmp_path / "list.yaml").write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_config(tmp_path / "list.yaml")


def test_save_roundtrip_and_diff(tmp_path):
    cfg = load_config(None, ["num_epochs=4", "mining.margin=0.1"])
    again = load_config(cfg.save(tmp_path / "out.yaml"))
    assert again == cfg
    assert sorted(config_diff(cfg)) == ["mining.margin=0.1", "num_epochs=4.0"]
    base = load_config(None, ["num_epochs=4"])
    assert config_diff(cfg, base) == ["mining.margin=0.1"]
    assert load_config(None, ["num_epochs=4", *config_diff(cfg, base)]) == cfg
    assert config_from_yaml_text(cfg.to_yaml()) == cfg


def test_field_specs_drive_a_form():
    specs = {s["key"]: s for s in field_specs()}
    assert specs["mining.sampling_strategy"]["choices"] == ["top", "random"]
    assert specs["batch_size"]["default"] == 32 and specs["batch_size"]["help"]
    assert all(s["help"] for s in specs.values()), [k for k, s in specs.items() if not s["help"]]
    kinds = {k: (s["kind"], s["optional"]) for k, s in specs.items()}
    assert kinds["batch_size"] == ("int", False) and kinds["mining.margin"] == ("float", True)
    assert kinds["format"] == ("choice", False) and kinds["prompts.query"] == ("text", True)
    assert kinds["matryoshka_dims"] == ("list", True) and kinds["resume"] == ("mixed", False)
    assert kinds["gradient_checkpointing"] == ("bool", False)


def test_readme_lists_every_key_with_its_schema_default():
    from core.config.schema import config_table

    assert config_table() in Path("README.md").read_text(encoding="utf-8"), (
        "README's config table is out of date; replace it with the output of "
        "`python -c 'from core.config.schema import config_table; print(config_table())'`"
    )


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("1: 2\n", "line 1: key 1 is not a setting name"),
        ("mining:\n  true: 3\n", "line 2: key True is not a setting name"),
    ],
)
def test_yaml_keys_that_are_not_names_are_errors_with_their_line(text, says):
    with pytest.raises(ConfigError, match=re.escape(says)):
        config_from_yaml_text(text)


def test_a_key_given_again_wins_and_a_section_given_again_is_merged():
    """The guide combines YAML blocks in one file: later keys win, and a second `mining:` block adds to the first
    instead of silently dropping what it set."""
    cfg = config_from_yaml_text("num_epochs: 1\nnum_epochs: 5\nmining:\n  margin: 0.1\nmining:\n  num_negatives: 1\n")
    assert cfg.num_epochs == 5 and cfg.mining.margin == 0.1 and cfg.mining.num_negatives == 1


def test_override_keys_must_be_names_and_a_hash_is_text():
    from core.config.text import parse_overrides

    for item in ("=v", ".num_epochs=1", "mining.=1"):
        with pytest.raises(ConfigError, match="empty key name"):
            parse_overrides([item])
    assert parse_overrides(["prompts.query=#Q: ", "seed=null"]) == {"prompts": {"query": "#Q: "}, "seed": None}

"""The Config tab's form as plain functions: prompts keep their spaces, presets follow the CLI's rule."""

from __future__ import annotations

import pytest

from core.config.schema import ConfigError, EmbedConfig, apply_preset, build_config, get_key
from studio.tabs.config import FORM_KEYS, form_to_config


def test_prompt_fields_keep_their_spaces_and_empty_means_the_models_own():
    config = EmbedConfig().to_dict()
    values = [get_key(config, k) for k in FORM_KEYS]
    values[FORM_KEYS.index("prompts.query")] = "query: "
    values[FORM_KEYS.index("prompts.document")] = "  "
    cfg = build_config(form_to_config(config, values))
    assert cfg.prompts.query == "query: " and cfg.prompts.document is None


def test_apply_preset_keeps_values_the_form_chose():
    config = EmbedConfig(learning_rate=5e-5).to_dict()
    quality = apply_preset(config, "quality")
    assert (quality["num_epochs"], quality["batch_size"], quality["learning_rate"]) == (8, 16, 5e-5)
    assert quality["mining"]["num_negatives"] == 2
    back = apply_preset(quality, "balanced")
    assert (back["num_epochs"], back["batch_size"], back["learning_rate"]) == (1, 32, 5e-5)
    assert back["mining"]["num_negatives"] == 1


def test_numbers_typed_as_text_become_the_fields_numbers():
    config = EmbedConfig().to_dict()
    values = [get_key(config, k) for k in FORM_KEYS]
    typed = {"batch_size": 16.0, "learning_rate": "1e-5", "mining.margin": " 0.1 ", "evaluation.eval_steps": "20"}
    for key, value in typed.items():
        values[FORM_KEYS.index(key)] = value
    cfg = build_config(form_to_config(config, values))
    assert (cfg.batch_size, cfg.learning_rate, cfg.mining.margin, cfg.evaluation.eval_steps) == (16, 1e-5, 0.1, 20)
    assert isinstance(cfg.batch_size, int) and isinstance(cfg.evaluation.eval_steps, int)
    values[FORM_KEYS.index("mining.num_negatives")] = "many"
    with pytest.raises(ConfigError, match="mining.num_negatives"):
        build_config(form_to_config(config, values))

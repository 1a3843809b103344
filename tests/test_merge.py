"""WiSE-FT at the end of a run (`merge_with_base`, core/training/merge.py) on the real bundled model: the weights keep
exactly that share of what training changed, and the key's None/1 leave them as trained."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from core.config.schema import ConfigError, build_config
from core.models.load import load_model
from core.training.merge import merge_with_base
from core.training.run_evals import last_eval_wasted


def _trained_copy(cfg):
    """The base model with a known change on every floating-point weight, standing in for training's change."""
    model = load_model(cfg.model_name, max_seq_length=cfg.max_seq_length)
    base = {k: v.clone() for k, v in model.state_dict().items()}
    change = {}
    with torch.no_grad():
        for k, w in model.state_dict().items():
            if w.is_floating_point():
                change[k] = torch.randn_like(w) * 0.01
                w.add_(change[k])
    return model, base, change


def test_merge_keeps_that_share_of_the_change():
    cfg = build_config({"dataset_name": "toy_embedding_dataset"})
    assert cfg.merge_with_base == 0.5  # the default recipe (LEVERS.md: WiSE-FT on the hand-written questions)
    model, base, change = _trained_copy(cfg)
    assert merge_with_base(model, cfg)
    after = model.state_dict()
    for k, delta in change.items():
        torch.testing.assert_close(after[k], base[k] + 0.5 * delta, atol=1e-6, rtol=1e-5)
    assert model.encode(["a question"]).shape == (1, 384)


@pytest.mark.parametrize("alpha", [None, 1])
def test_none_or_one_keeps_the_trained_weights(alpha):
    cfg = build_config({"dataset_name": "toy_embedding_dataset", "merge_with_base": alpha})
    model, base, change = _trained_copy(cfg)
    assert not merge_with_base(model, cfg)
    k = next(iter(change))
    torch.testing.assert_close(model.state_dict()[k], base[k] + change[k])


@pytest.mark.parametrize("bad", [0, -0.5, 1.5, "half"])
def test_a_share_outside_0_to_1_is_refused_by_name(bad):
    with pytest.raises(ConfigError, match="merge_with_base"):
        build_config({"dataset_name": "toy_embedding_dataset", "merge_with_base": bad})


def test_the_last_step_is_evaluated_only_where_something_uses_it():
    """With the automatic schedule, an evaluation of the last step is skipped when the merge follows it or it saw a
    bounded corpus (the final evaluation measures the end anyway); kept when asked for, or when the best checkpoint
    is chosen among the evaluations."""
    small, large = SimpleNamespace(corpus=["d"] * 10), SimpleNamespace(corpus=["d"] * 5000)

    def cfg(**over):
        return build_config({"dataset_name": "toy_embedding_dataset", **over})

    assert last_eval_wasted(cfg(), small)  # the default merges
    assert not last_eval_wasted(cfg(merge_with_base=None), small)  # reused as the final metrics
    assert last_eval_wasted(cfg(merge_with_base=None), large)  # bounded during training (max_corpus_size 1000)
    assert not last_eval_wasted(cfg(evaluation={"eval_steps": 5}), small)  # asked for
    assert not last_eval_wasted(cfg(evaluation={"save_best_model": True}), small)  # a candidate for the best

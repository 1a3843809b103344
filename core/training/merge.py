"""WiSE-FT (Wortsman et al. 2022): after fine-tuning, move the weights back part of the way to the base model's.
Keeping a fraction of what training changed gives back a little in-domain gain for robustness to queries unlike the
training data's (tests/benchmarks/LEVERS.md, the transfer protocol). A weight interpolation is one `lerp` per
tensor; no library we use offers it for a SentenceTransformer, so it is written here."""

from __future__ import annotations

import logging

import torch

from core.config.schema import EmbedConfig
from core.models.load import load_model

log = logging.getLogger(__name__)


def merge_with_base(model, cfg: EmbedConfig) -> bool:
    """In place: every floating-point weight becomes base + alpha x (trained - base), alpha = cfg.merge_with_base,
    the base being cfg.model_name's weights. False (nothing done) when alpha is None or 1."""
    if not merges(cfg):
        return False
    alpha = cfg.merge_with_base
    base = load_model(cfg.model_name, max_seq_length=cfg.max_seq_length, device="cpu").state_dict()
    with torch.no_grad():
        for name, w in model.state_dict().items():
            if w.is_floating_point() and name in base and base[name].shape == w.shape:
                w.lerp_(base[name].to(device=w.device, dtype=w.dtype), 1 - float(alpha))  # w + (1-a)(base - w)
    log.info("weights merged with the base model's: %.2f x the change training made", alpha)
    return True


def merges(cfg: EmbedConfig) -> bool:
    return cfg.merge_with_base is not None and cfg.merge_with_base < 1


def merged_message(share: float) -> str:
    return (
        f"kept {share:g} of what training changed (merge_with_base, WiSE-FT): steadier on questions worded unlike "
        "the training data; the final evaluation measures these weights"
    )

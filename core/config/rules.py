"""Rules a config implies for a data format: which loss it trains with, whether that loss can read the data, and
the metric a run is judged by. Plain functions of the config, so limits, training and run history share them."""

from __future__ import annotations


def loss_kind(cfg, fmt: str) -> str:
    """The config's loss with "auto" resolved: CoSENT for scored pairs, the cached MNRL when mini_batch_size is set."""
    if cfg.loss != "auto":
        return cfg.loss
    return "cosent" if fmt == "scored" else "cached_mnrl" if cfg.mini_batch_size else "mnrl"


def check_loss(cfg, fmt: str) -> None:
    """The loss must read this data: CoSENT learns from scores, MNRL ranks documents (it would ignore scores)."""
    kind = loss_kind(cfg, fmt)
    if kind == "cosent" and fmt != "scored":
        raise ValueError(f"loss: cosent learns from similarity scores, and this data is {fmt}; use loss: auto (MNRL)")
    if kind != "cosent" and fmt == "scored":
        raise ValueError(f"loss: {kind} would ignore the similarity scores of this data; use loss: auto (CoSENT)")


# The metric a run is judged by, per data format: what early stopping, best-checkpoint and keep-the-base follow.
PRIMARY = {"pairs": "ndcg@10", "triplets": "ndcg@10", "scored": "spearman"}

"""When a training evaluates and saves: as many evaluations as a share of the training compute pays for, spread
over the run — shared by the training itself and the estimate that predicts it."""

from __future__ import annotations

import math

from core.config.schema import EmbedConfig

EVALS_PER_RUN = 4  # when eval_steps is not set: at most this many evaluations during training...
MIN_EVAL_GAP = 5  # ...never more often than this: each evaluation re-encodes the corpus and saves a checkpoint...
EVAL_SHARE = 0.15  # ...and together they may cost at most this share of the training compute (a CPU run is
# otherwise dominated by them: 4 evaluations of a 1,000-document corpus cost as much as 17 MedQuAD steps)


def eval_steps(cfg: EmbedConfig, steps_per_epoch: int, columns: int, eval_texts: int) -> int | None:
    """Steps between evaluations during training; None = no evaluation until the final one.

    Automatic (eval_steps unset): as many evaluations as EVAL_SHARE of the training compute pays for, at most
    EVALS_PER_RUN. A training step is a forward and a backward pass (about 3 forward passes) over
    batch_size x columns texts; an evaluation is one forward pass over its queries and documents. Early stopping
    needs evaluations to act on, so with a patience the run gets EVALS_PER_RUN of them whatever they cost."""
    if cfg.evaluation.eval_steps:
        return cfg.evaluation.eval_steps
    total = total_steps(cfg, steps_per_epoch)
    affordable = int(EVAL_SHARE * total * 3 * cfg.batch_size * columns / max(1, eval_texts))
    n = EVALS_PER_RUN if cfg.evaluation.early_stopping_patience else min(EVALS_PER_RUN, affordable)
    if n <= 1:  # a single one would fall on the last step, which the final evaluation measures anyway
        return None
    return every(total, n)


def loads_best(cfg: EmbedConfig) -> bool:
    """Whether the trainer ends on its best evaluated checkpoint rather than the final weights (early stopping
    needs it)."""
    return cfg.evaluation.save_best_model or bool(cfg.evaluation.early_stopping_patience)


def total_steps(cfg: EmbedConfig, steps_per_epoch: int) -> int:
    return max(1, math.ceil(steps_per_epoch * cfg.num_epochs))


def every(total: int, n: int) -> int:
    """Steps between `n` events spread over `total` steps, never closer than MIN_EVAL_GAP."""
    return max(math.ceil(total / n), min(total, MIN_EVAL_GAP))


def eval_texts(evaluator) -> int:
    """How many texts one run of `evaluator` encodes (queries + corpus, or both sides of each pair)."""
    if evaluator is None:
        return 0
    if hasattr(evaluator, "evaluators"):
        return sum(eval_texts(e) for e in evaluator.evaluators)
    if hasattr(evaluator, "corpus"):
        return len(evaluator.queries) + len(evaluator.corpus)
    return sum(
        len(getattr(evaluator, a, ())) for a in ("sentences1", "sentences2", "anchors", "positives", "negatives")
    )

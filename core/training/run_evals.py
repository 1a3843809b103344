"""The evaluations of a training run: its evaluators, the metrics after training, and whether to keep the base model.

The final metrics are measured once: an evaluation during training of the checkpoint the trainer kept (on the
full corpus) is reused rather than encoding the same corpus again with the same weights.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from core.config.schema import EmbedConfig
from core.evaluation.evaluators import build_evaluator, evaluate
from core.evaluation.schedule import loads_best
from core.models.load import load_model, resolve_miner, resolve_model, set_prompts
from core.runs.events import read_events
from core.runs.folders import EVENTS_FILE
from core.training import ranks
from core.training.callback import EventCallback
from core.training.merge import merges


def evaluators(cfg: EmbedConfig, prep, prompts: dict[str, str]) -> tuple[Any, Any]:
    """(final evaluator on the whole corpus, evaluator during training on at most max_corpus_size documents)."""
    ev_batch = cfg.mining.batch_size  # one encoding batch size for mining and evaluations (the probe measures it)
    final_eval = build_evaluator(prep.test, prep.fmt, prep.corpus, batch_size=ev_batch, seed=cfg.seed, prompts=prompts)
    step_eval = build_evaluator(
        prep.test,
        prep.fmt,
        prep.corpus,
        batch_size=ev_batch,
        max_corpus_size=cfg.evaluation.max_corpus_size,
        seed=cfg.seed,
        prompts=prompts,
    )
    return final_eval, step_eval


def mined_with_base(cfg: EmbedConfig) -> bool:
    return resolve_miner(cfg.mining_model_name, cfg.model_name) == resolve_model(cfg.model_name)


def metric_key(evaluator, primary: str) -> str:
    name = getattr(evaluator, "primary_metric", None)
    if name:
        return name
    return f"test_cosine_{primary}" if primary != "spearman" else "test_spearman_cosine"


def _known_final_metrics(state, callback: EventCallback, loaded_best: bool) -> dict | None:
    """Metrics of the model now in memory when an evaluation during training (on the full corpus) measured it."""
    step = state.global_step
    if loaded_best and state.best_model_checkpoint:
        step = int(Path(state.best_model_checkpoint).name.rsplit("-", 1)[1])
    return callback.evals.get(step)


def _last_metrics(run_dir: Path) -> dict[str, float]:
    evals = [e for e in read_events(run_dir / EVENTS_FILE)[0] if e["type"] == "eval"]
    return evals[-1]["metrics"] if evals else {}


def _bounded(cfg: EmbedConfig, prep) -> bool:
    """Whether evaluations during training see only part of the corpus (not comparable with the baseline's)."""
    return bool(cfg.evaluation.max_corpus_size) and len(prep.corpus) > cfg.evaluation.max_corpus_size


def last_eval_wasted(cfg: EmbedConfig, prep) -> bool:
    """Whether an evaluation of the last step would go unused: the final evaluation cannot reuse it (the weights are
    merged afterwards, or it saw a bounded corpus) and no best checkpoint is chosen among the evaluations. An
    `eval_steps` the user set is kept as asked (its evaluations also reach TensorBoard)."""
    auto = cfg.evaluation.eval_steps is None
    return auto and not loads_best(cfg) and (merges(cfg) or _bounded(cfg, prep))


def final_metrics(
    cfg: EmbedConfig, prep, trainer, callback: EventCallback, model, final_eval, run_dir: Path, state: str
) -> tuple[dict[str, float], bool]:
    """(metrics after training, whether they were measured now): the last full evaluation of the kept checkpoint
    when the trainer already ran it, else a final evaluation, else (a run stopped after evaluating the whole
    corpus with its best checkpoint loaded) the last one."""
    # The trainer has loaded the best checkpoint (load_best_model_at_end) even when stopped early; without it the
    # model holds the weights of the step it stopped at, which no evaluation has measured yet. Evaluations during
    # training on a bounded corpus are not comparable with the baseline's, so those runs are always measured.
    loaded_best = trainer.args.load_best_model_at_end
    bounded = _bounded(cfg, prep)
    after = None if bounded else _known_final_metrics(trainer.state, callback, loaded_best)
    measured = after is None and (state == "finished" or bounded or not callback.evals or not loaded_best)
    if measured:  # a run stopped before any evaluation is measured too
        phases = callback.phases
        after = ranks.on_rank0(
            lambda: evaluate(
                model,
                final_eval,
                precision=cfg.encode_precision,
                progress=(lambda done, total: phases.update("final_evaluation", done, total)) if phases else None,
            ),
            model,
        )
    elif after is None:
        after = _last_metrics(run_dir)
    return after, measured


def keep_base_if_worse(cfg: EmbedConfig, primary: str, before: dict, after: dict, prompts: dict[str, str]):
    """(base model, its metrics, why) when the finished run's kept model scores below the base model on the primary
    metric, else None (`evaluation.keep_base_if_worse`): a run that only made retrieval worse must not replace a
    good model with a worse one. Both figures come from the same full evaluation, so the comparison is fair."""
    if not (
        cfg.evaluation.keep_base_if_worse and primary in before and after.get(primary, float("-inf")) < before[primary]
    ):
        return None
    model = load_model(cfg.model_name, max_seq_length=cfg.max_seq_length)
    set_prompts(model, prompts)
    message = (
        f"Training did not beat the base model ({primary} {before[primary]:.4f} before, "
        f"{after.get(primary, float('nan')):.4f} after), so the base model was kept. Try a lower learning_rate, "
        "more data or other mining settings."
    )
    return model, dict(before), message

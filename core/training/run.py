"""Fine-tuning with SentenceTransformerTrainer: losses by format, evaluation, early stopping, stop, resume.

`train(cfg)` is the one code path behind `python -m core train`, `make train-embed` and the studio's Start.
Everything a UI needs to know is written to the run's events.jsonl.
"""

from __future__ import annotations

import logging
import os
import shutil
import threading
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from transformers import EarlyStoppingCallback, PrinterCallback

from core.config.rules import PRIMARY
from core.config.schema import EmbedConfig
from core.errors import run_message
from core.evaluation import schedule
from core.evaluation.advice import warn_after_baseline
from core.evaluation.evaluators import evaluate
from core.models import devices
from core.models.encoding import encode_precision, training_precision
from core.models.load import (
    check_output_dir,
    is_model_dir,
    load_model,
    model_prompts,
    set_attention_dropout,
    set_prompts,
    takes_attention_mask,
)
from core.runs.events import EventWriter, read_events
from core.runs.folders import (
    CHECKPOINTS,
    CONFIG_FILE,
    EVENTS_FILE,
    LOG_FILE,
    METRICS_FILE,
    PID_FILE,
    STOP_FILE,
    latest_checkpoint,
    list_runs,
    new_run_dir,
    stop_reason,
    write_json,
)
from core.runs.progress import PhaseTracker
from core.runs.record import RECORD_FILE, run_record
from core.training import ranks, run_evals
from core.training.callback import EventCallback
from core.training.estimate import start_phases
from core.training.losses import build_loss
from core.training.merge import merge_with_base, merged_message
from core.training.model_card import examples_of, write_model_card
from core.training.precision import run_precision
from core.training.prepare import TRAIN_TABLE, build_table, load_and_split
from core.training.run_evals import evaluators, final_metrics, keep_base_if_worse, metric_key, mined_with_base

log = logging.getLogger("core")
STATIC_MIN_LR = 1e-3  # below this a StaticEmbedding model (trained at ~0.1-0.2) hardly moves: warn


@dataclass
class RunResult:
    run_dir: Path
    state: str  # finished | stopped | failed
    model_dir: str | None = None
    before: dict[str, float] = field(default_factory=dict)
    after: dict[str, float] = field(default_factory=dict)
    message: str | None = None

    @property
    def exit_code(self) -> int:
        return {"finished": 0, "stopped": 0}.get(self.state, 1)


def _resume_target(cfg: EmbedConfig) -> tuple[Path | None, str | None]:
    """(run folder to continue, checkpoint) for `resume`: true = the newest unfinished run with a checkpoint."""
    if not cfg.resume:
        return None, None
    if isinstance(cfg.resume, str) and cfg.resume.lower() not in {"true", "yes", "1"}:
        ckpt = Path(cfg.resume)
        if not (ckpt / "trainer_state.json").exists():
            latest = latest_checkpoint(ckpt)  # a run folder was given
            if latest is None:
                raise FileNotFoundError(f"resume: '{cfg.resume}' is neither a checkpoint nor a run with checkpoints")
            ckpt = latest
        return ckpt.parent.parent, str(ckpt)
    for run in list_runs(cfg.runs_dir):
        if run.kind == "train" and run.state in {"interrupted", "stopped", "failed"}:
            ckpt = latest_checkpoint(run.path)
            if ckpt:
                return Path(run.path), str(ckpt)
    raise FileNotFoundError(f"resume=true: no interrupted run with a checkpoint under {cfg.runs_dir}/")


def _file_logging(path: Path) -> logging.Handler:
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    for name in ("core", "sentence_transformers", "transformers"):
        logging.getLogger(name).addHandler(handler)
    logging.getLogger("core").setLevel(logging.INFO)
    return handler


def plan_run(cfg: EmbedConfig) -> tuple[Path, str | None]:
    """(run folder, checkpoint to resume from or None). Raises FileNotFoundError for a resume with nothing to resume."""
    resume_dir, resume_ckpt = _resume_target(cfg)
    return (resume_dir or new_run_dir(cfg.runs_dir, cfg.dataset_name)), resume_ckpt


def train(
    cfg: EmbedConfig,
    run_dir: str | Path | None = None,
    resume_ckpt: str | None = None,
    stop_event: threading.Event | None = None,
) -> RunResult:
    """Run one training end to end. Never raises for user errors: the result (and a `failed` event) says why."""
    early_error = None
    if run_dir is None:
        try:
            run_dir, resume_ckpt = plan_run(cfg)
        except FileNotFoundError as exc:
            run_dir, early_error = new_run_dir(cfg.runs_dir, cfg.dataset_name), str(exc)
    run_dir = Path(run_dir)
    main = devices.is_main()  # under torchrun only rank 0 writes into the run folder
    if main:
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / STOP_FILE).unlink(missing_ok=True)
        cfg.save(run_dir / CONFIG_FILE)
        write_json(run_dir / RECORD_FILE, run_record(run_dir))
        write_json(run_dir / PID_FILE, os.getpid())
    writer = EventWriter(run_dir / EVENTS_FILE) if main else ranks.NullWriter()
    handler = _file_logging(run_dir / LOG_FILE) if main else logging.NullHandler()
    callback = EventCallback(writer, run_dir)
    if stop_event is not None:
        callback.stop_event = stop_event
    try:
        if early_error:
            raise FileNotFoundError(early_error)
        check_output_dir(cfg.output_dir)
        return _train(cfg, run_dir, writer, callback, resume_ckpt)
    except Exception as exc:  # every failure becomes a `failed` event with an actionable message
        message = run_message(exc, LOG_FILE)
        log.error("run failed: %s\n%s", message, traceback.format_exc())
        writer.emit("failed", message=message)
        return RunResult(run_dir, "failed", message=message)
    finally:
        for name in ("core", "sentence_transformers", "transformers"):
            logging.getLogger(name).removeHandler(handler)
        handler.close()


def _train(
    cfg: EmbedConfig, run_dir: Path, writer: EventWriter, callback: EventCallback, resume_ckpt: str | None
) -> RunResult:
    """The phases of a run: load, prepare (split, mine, baseline), train, final metrics, save."""
    times = {"start": time.time()}
    device = ranks.init_process_group()
    on_gpu = device is not None and device.type == "cuda"  # each rank on its own GPU
    model = load_model(cfg.model_name, max_seq_length=cfg.max_seq_length, device=str(device) if on_gpu else None)
    prompts = set_prompts(model, model_prompts(model, cfg.prompts))  # saved with the model: encode_query works
    kept = getattr(model, "max_seq_length", None)  # a StaticEmbedding has no length limit
    if cfg.max_seq_length and kept and kept < cfg.max_seq_length:
        writer.emit(  # the model's own limit replaced the value asked for: said where the run's warnings are read
            "warning",
            kind="max_seq_length_capped",
            message=f"max_seq_length={cfg.max_seq_length} is more than {cfg.model_name} takes: using its {kept}",
        )
    # Once per run, on rank 0, with the encoding spread over every rank; the others receive the result.
    prep, before, times["mined"], estimate = ranks.on_rank0(
        lambda: _prepare(cfg, run_dir, writer, model, resume_ckpt, prompts, times["start"]), model
    )
    phases = callback.phases = PhaseTracker(writer, estimate)  # other ranks' writer writes nothing
    times["before"] = time.time()
    final_eval, step_eval = evaluators(cfg, prep, prompts)
    if cfg.report_to == "tensorboard":
        os.environ["TENSORBOARD_LOGGING_DIR"] = str(run_dir / "tensorboard")  # transformers 5 reads it from here
    try:
        trainer = _build_trainer(cfg, run_dir, prep, model, prompts, callback, step_eval, writer)
        times["train0"] = time.time()
        trainer.train(resume_from_checkpoint=resume_ckpt)
    finally:
        os.environ.pop("TENSORBOARD_LOGGING_DIR", None)
    if merge_with_base(model, cfg):
        callback.evals.clear()  # evaluations during training measured the weights before the merge: measure again
        writer.emit("merged", share=cfg.merge_with_base, message=merged_message(cfg.merge_with_base))
    times["trained"] = time.time()
    phases.end("training", total=trainer.state.max_steps)
    phases.start("final_evaluation")
    state = "stopped" if callback.stopped else "finished"
    after, measured = final_metrics(cfg, prep, trainer, callback, model, final_eval, run_dir, state)
    if not devices.is_main():
        return RunResult(run_dir, state)  # rank 0 decides what to keep and writes it
    if state == "finished" or measured:
        writer.emit(
            "eval", step=trainer.state.global_step, epoch=round(trainer.state.epoch or 0, 4), metrics=after, final=True
        )
    return _finish(cfg, run_dir, writer, phases, prep, trainer, model, prompts, (before, after), state, times)


def _build_trainer(
    cfg: EmbedConfig, run_dir: Path, prep, model, prompts: dict[str, str], callback, step_eval, writer: EventWriter
):
    """The trainer over the training table, with the evaluation/checkpoint schedule the data's size pays for and the
    precision measured on its own batches (core.training.precision)."""
    from datasets import Dataset
    from sentence_transformers import SentenceTransformerTrainer

    train_ds = Dataset.from_pandas(prep.table, preserve_index=False)
    world = devices.world_size()
    steps_per_epoch = max(1, len(train_ds) // (cfg.batch_size * world))  # each step takes one batch per rank
    eval_steps = schedule.eval_steps(cfg, steps_per_epoch, len(train_ds.column_names), schedule.eval_texts(step_eval))
    has_eval = step_eval is not None and eval_steps is not None
    callback.skip_last_eval = run_evals.last_eval_wasted(cfg, prep)  # the final evaluation measures the end
    # Without evaluations, checkpoints are still written now and then so that an interrupted run can resume.
    save_steps = eval_steps or schedule.every(schedule.total_steps(cfg, steps_per_epoch), schedule.EVALS_PER_RUN)
    precision, decided = run_precision(cfg, prep.fmt, prep.table, model, schedule.total_steps(cfg, steps_per_epoch))
    writer.emit("precision", **decided)
    devices.release_freed_memory()  # what mining, the baseline evaluation and the probe freed: not kept beside training
    set_attention_dropout(model, cfg.attention_dropout)
    args = _training_args(cfg, run_dir, prep, train_ds, prompts, step_eval, (eval_steps, save_steps), precision)
    callbacks: list[Any] = [callback]
    if has_eval and cfg.evaluation.early_stopping_patience:
        callbacks.append(EarlyStoppingCallback(early_stopping_patience=cfg.evaluation.early_stopping_patience))
    trainer = SentenceTransformerTrainer(
        model=model,
        args=args,
        train_dataset=train_ds,
        loss=build_loss(cfg, prep.fmt, model),
        evaluator=step_eval if has_eval else None,
        callbacks=callbacks,
    )
    trainer.remove_callback(PrinterCallback)  # progress goes to events.jsonl; the CLI prints from there
    return trainer


def _finish(cfg, run_dir: Path, writer, phases, prep, trainer, model, prompts, scores, state, times) -> RunResult:
    """Timing and metrics.json, the base model kept when training made it worse, the model saved, the last event.
    `scores` = (metrics before, metrics after training)."""
    before, after = scores
    now, trained = time.time(), times["trained"] - times["train0"]
    timing = {
        "mining_s": round(times["mined"] - times["start"], 2),
        "baseline_eval_s": round(times["before"] - times["mined"], 2),
        "train_s": round(trained, 2),
        "final_eval_s": round(now - times["trained"], 2),
        "total_s": round(now - times["start"], 2),
        "train_samples_per_s": round(len(prep.table) * cfg.num_epochs / max(1e-9, trained), 2),
    }
    primary = PRIMARY[prep.fmt]
    message = stop_reason(run_dir) if state == "stopped" else None
    kept = keep_base_if_worse(cfg, primary, before, after, prompts) if state == "finished" else None
    replace_output = True
    if kept:
        model, after, message = kept
        if is_model_dir(Path(cfg.output_dir)):  # a run that made things worse leaves an earlier model where it is
            replace_output = False
            message += f" output_dir ({Path(cfg.output_dir).name}) keeps the model it held; the base is in the run."
    best = trainer.state.best_model_checkpoint if trainer.args.load_best_model_at_end else None  # what was kept
    metrics = {
        "primary": primary,
        "before": before,
        "after": after,
        "best_checkpoint": Path(best).name if best else None,
        "steps": trainer.state.global_step,
        "timing": timing,
        "kept_base_model": kept is not None,
        "warnings": [e["message"] for e in read_events(run_dir / EVENTS_FILE)[0] if e["type"] == "warning"],
    }
    write_json(run_dir / METRICS_FILE, metrics)
    phases.end("final_evaluation")
    phases.start("saving")
    model_dir = _save_model(model, cfg, run_dir, prep, metrics, replace_output)
    phases.end("saving")
    step = trainer.state.global_step
    writer.emit(
        state,
        model_dir=model_dir,
        metrics=after,
        before=before,
        step=step,
        timing=timing,
        run_dir=str(run_dir),
        message=message,
    )
    return RunResult(run_dir, state, model_dir, before, after)


def _training_args(
    cfg: EmbedConfig,
    run_dir: Path,
    prep,
    train_ds,
    prompts: dict[str, str],
    step_eval,
    steps: tuple[int | None, int],
    precision: dict[str, bool],
):
    """The trainer's arguments: the config's settings, the evaluation/save schedule (`steps`: eval and save every),
    distributed and precision."""
    eval_steps, save_steps = steps
    from sentence_transformers import SentenceTransformerTrainingArguments
    from sentence_transformers.sentence_transformer.training_args import BatchSamplers

    has_eval = step_eval is not None and eval_steps is not None
    primary = PRIMARY[prep.fmt]
    return SentenceTransformerTrainingArguments(
        output_dir=str(run_dir / CHECKPOINTS),
        num_train_epochs=cfg.num_epochs,
        per_device_train_batch_size=cfg.batch_size,
        per_device_eval_batch_size=max(32, cfg.batch_size),
        learning_rate=cfg.learning_rate,
        weight_decay=cfg.weight_decay,
        warmup_ratio=cfg.warmup_ratio,
        lr_scheduler_type=cfg.lr_scheduler,
        seed=cfg.seed,
        data_seed=cfg.seed,
        **({"gradient_checkpointing": True} if cfg.gradient_checkpointing else {}),
        dataloader_pin_memory=False,
        batch_sampler=ranks.no_duplicates_sampler() if prep.fmt != "scored" else BatchSamplers.BATCH_SAMPLER,
        eval_strategy="steps" if has_eval else "no",
        eval_steps=eval_steps,
        save_strategy="steps",
        save_steps=save_steps,
        save_total_limit=2 if has_eval else 1,
        load_best_model_at_end=has_eval and schedule.loads_best(cfg),
        metric_for_best_model=f"eval_{metric_key(step_eval, primary)}" if has_eval else None,
        greater_is_better=True,
        logging_steps=cfg.logging_steps,
        logging_first_step=True,
        report_to=["tensorboard"] if cfg.report_to == "tensorboard" else "none",
        disable_tqdm=True,
        dataloader_drop_last=False,
        **({"prompts": column_prompts(train_ds.column_names, prompts)} if any(prompts.values()) else {}),
        **ranks.training_args() | precision,  # both may ask for use_cpu
    )


def column_prompts(columns: list[str], prompts: dict[str, str]) -> dict[str, str]:
    """The trainer's `prompts`: each training-table column mapped to its prompt. Queries get the query prompt,
    positives and negatives the document prompt; scored pairs are symmetric, so both sides get the query prompt."""
    return {
        c: prompts["query"] if c in ("query", "sentence1", "sentence2") else prompts["document"]
        for c in columns
        if c != "score"
    }


def _prepare(
    cfg: EmbedConfig,
    run_dir: Path,
    writer: EventWriter,
    model,
    resume_ckpt: str | None,
    prompts: dict[str, str],
    t_start: float,
):
    """(prepared data and table, baseline metrics, time mining ended, the time estimate or None): split, mine,
    evaluate the base model, each a phase in the event stream."""
    static = not takes_attention_mask(model)  # a StaticEmbedding: no truncation to measure texts against
    prep = load_and_split(cfg, run_dir, None if static else model.tokenizer)
    if static and cfg.learning_rate < STATIC_MIN_LR:
        prep.warnings.append(
            f"{cfg.model_name} is a StaticEmbedding model: they learn at rates around 0.1, "
            f"learning_rate={cfg.learning_rate:g} will barely change it"
        )
    world = devices.world_size()
    writer.emit(
        "run_started",
        kind="train",
        config=cfg.to_dict(),
        data=prep.stats,
        run_dir=str(run_dir),
        resume=resume_ckpt,
        device=str(model.device),
        precision=next(iter(training_precision(cfg, model)), "fp32"),
        encode_precision=encode_precision(model, cfg.encode_precision),  # measured once per machine and model
        world_size=world,
        global_batch=cfg.batch_size * world,
    )
    phases = start_phases(cfg, prep, writer, t_start, resume_ckpt)
    if resume_ckpt and (run_dir / TRAIN_TABLE).exists():
        import pandas as pd

        prep.table = pd.read_parquet(run_dir / TRAIN_TABLE)  # the exact rows the interrupted run trained on
    else:
        phases.start("mining")
        build_table(prep, cfg, run_dir, writer, model, on_encoded=phases.update)
        phases.end("mining")
    t_mined = time.time()
    if resume_ckpt is None:
        before = _baseline(cfg, prep, writer, phases, model, prompts)
    else:
        before = next((e["metrics"] for e in read_events(run_dir / EVENTS_FILE)[0] if e.get("baseline")), {})
    if prep.mining:
        prep.mining.corpus_embeddings = None  # used; not worth keeping (nor sending to the other ranks)
    return prep, before, t_mined, phases.estimate


def _baseline(cfg: EmbedConfig, prep, writer: EventWriter, phases: PhaseTracker, model, prompts) -> dict[str, float]:
    """The base model's metrics on the test split (step 0 of the curves), with a warning when they leave no room."""
    # Encode once: when the base model mined, its corpus embeddings serve the baseline evaluation too.
    known = prep.mining.corpus_embeddings if prep.mining and mined_with_base(cfg) else None
    phases.start("baseline")
    before = evaluate(
        model,
        evaluators(cfg, prep, prompts)[0],
        known,
        cfg.encode_precision,
        lambda done, total: phases.update("baseline", done, total),
    )
    phases.end("baseline")
    writer.emit("eval", step=0, epoch=0.0, metrics=before, baseline=True)
    warn_after_baseline(writer, prep, before, PRIMARY[prep.fmt])
    return before


def _save_model(
    model, cfg: EmbedConfig, run_dir: Path, prep, metrics: dict[str, Any], replace_output: bool = True
) -> str:
    """Save into the run folder, then (with `replace_output`) swap it into output_dir whole, so a failed save never
    leaves half a model. Returns where the run's model is."""
    check_output_dir(cfg.output_dir)
    run_model = run_dir / "model"
    if run_model.exists():
        shutil.rmtree(run_model)
    model.save(str(run_model))
    write_model_card(run_model, cfg, prep.stats, metrics, examples_of(prep))
    if not replace_output:
        return str(run_model)
    out = Path(cfg.output_dir)
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(run_model, tmp)
    if out.exists():
        shutil.rmtree(out)
    tmp.rename(out)
    return str(out)

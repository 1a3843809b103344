"""The trainer callback of a run: trainer events -> events.jsonl, and the stop switch (STOP file or signal).

It also keeps each evaluation's metrics by step, so the final metrics can reuse an evaluation of the kept
checkpoint instead of encoding the corpus again with the same weights.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

from transformers import TrainerCallback

from core.evaluation.evaluators import normalise_metrics
from core.runs.events import EventWriter
from core.runs.folders import stop_requested
from core.runs.progress import PhaseTracker
from core.training import ranks


class EventCallback(TrainerCallback):
    """Trainer callback -> events.jsonl; also the stop switch (STOP file or signal), checked every step."""

    def __init__(self, writer: EventWriter, run_dir: Path):
        self.writer, self.run_dir = writer, run_dir
        self.stop_event = threading.Event()
        self.stopped = False
        self.t0 = time.time()
        self.step0 = 0
        self.evals: dict[int, dict[str, float]] = {}  # step -> metrics, to reuse instead of evaluating twice
        self.phases: PhaseTracker | None = None
        # Set by the run when the last step's evaluation could not be reused as the final metrics (the weights are
        # merged afterwards, or the corpus is bounded during training): the final evaluation measures the end anyway.
        self.skip_last_eval = False

    def on_train_begin(self, args, state, control, **kw):
        self.t0, self.step0 = time.time(), state.global_step
        if self.phases:
            self.phases.start("training", total=state.max_steps)

    def on_step_end(self, args, state, control, **kw):
        if state.global_step >= state.max_steps:
            control.should_log = True  # the loss curve reaches the last step, whatever logging_steps is
            if self.skip_last_eval:
                control.should_evaluate = False
        # Every rank asks, and they agree, so that all of them stop at the same step.
        if ranks.agree(self.stop_event.is_set() or stop_requested(self.run_dir), args.device):
            self.stopped = True
            control.should_training_stop = True
            control.should_save = False  # stop keeps the weights in memory (or the best checkpoint, if kept)

    def on_log(self, args, state, control, logs=None, **kw):
        if not logs or "loss" not in logs:
            return
        done = max(1, state.global_step - self.step0)
        eta = (time.time() - self.t0) / done * max(0, state.max_steps - state.global_step)
        self.writer.emit(
            "train_step",
            step=state.global_step,
            max_steps=state.max_steps,
            epoch=round(state.epoch or 0.0, 4),
            loss=logs["loss"],
            learning_rate=logs.get("learning_rate"),
            eta_s=round(eta, 1),
        )
        if self.phases:
            self.phases.update("training", state.global_step, state.max_steps, eta)

    def on_evaluate(self, args, state, control, metrics=None, **kw):
        self.evals[state.global_step] = normalise_metrics(metrics or {})
        self.writer.emit(
            "eval",
            step=state.global_step,
            epoch=round(state.epoch or 0.0, 4),
            metrics=self.evals[state.global_step],
            partial=True,
        )

    def on_save(self, args, state, control, **kw):
        path = Path(args.output_dir) / f"checkpoint-{state.global_step}"
        # `best` names the checkpoint the run will end on; with the final weights kept there is none.
        best = state.best_model_checkpoint if args.load_best_model_at_end else None
        self.writer.emit("checkpoint", step=state.global_step, path=str(path), best=best)

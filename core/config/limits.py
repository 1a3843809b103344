"""Public mode and its limits, in one place: a shared Space serves strangers, so each bounds what one visitor may
ask of the server. Every limit has a default here and an environment variable to override it.

Public mode is on when `SPACE_ID` is set (a Hugging Face Space) or `STUDIO_PUBLIC=1`, off with `STUDIO_PUBLIC=0`
(a private duplicate of the Space); a local studio has no limits
but the training queue's size (STUDIO_MAX_TRAININGS applies in both modes).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, fields

from core.config.rules import loss_kind
from core.config.schema import ConfigError

TRUE = {"1", "true", "yes", "on"}
FALSE = {"0", "false", "no", "off"}


def env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in TRUE


def public_mode() -> bool:
    """On a Space or with STUDIO_PUBLIC=1; an explicit STUDIO_PUBLIC=0 turns it off even on a Space (a private
    duplicate: its owner alone uses it, without the public limits)."""
    if os.environ.get("STUDIO_PUBLIC", "").strip().lower() in FALSE:
        return False
    return bool(os.environ.get("SPACE_ID")) or env_flag("STUDIO_PUBLIC")


def downloads_allowed() -> bool:
    """Whether a public studio may fetch hub models that are not cached yet (each is hundreds of MB of disk)."""
    return env_flag("STUDIO_ALLOW_DOWNLOADS")


@dataclass(frozen=True)
class Limits:
    """Defaults sized for a 2-vCPU free Space: a visitor can train a real model in minutes, not hog the machine."""

    max_trainings: int = 1  # STUDIO_MAX_TRAININGS: trainings running at once; later Starts wait in a FIFO queue
    upload_mb: float = 20  # STUDIO_MAX_UPLOAD_MB: one uploaded file (Data, Compare corpus)
    dataset_rows: int = 20_000  # STUDIO_MAX_ROWS: rows of one dataset
    corpus_docs: int = 20_000  # STUDIO_MAX_CORPUS_DOCS: documents of a corpus (mining, evaluation, Compare)
    num_epochs: float = 3  # STUDIO_MAX_EPOCHS
    train_minutes: float = 30  # STUDIO_MAX_TRAIN_MINUTES: wall time of one training; then it stops and keeps its model
    mine_rows: int = 5_000  # STUDIO_MAX_MINE_ROWS: queries of an in-process Mine now / re-mine preview
    visitor_ttl_hours: float = 24  # STUDIO_VISITOR_TTL_HOURS: a visitor's folder is deleted this long after last use
    visitor_disk_mb: float = 2048  # STUDIO_VISITOR_DISK_MB: a visitor's folder (uploads, runs, models, exports)
    # STUDIO_MIN_FREE_DISK_MB: what the server keeps free whatever the number of visitors (a script can open any
    # number of sessions, each with its own folder and cap); below it, new files are refused for everyone.
    min_free_disk_mb: float = 1024
    loaded_models: int = 4  # STUDIO_MAX_MODELS: models kept in memory for search and mining, least recently used go
    # STUDIO_MAX_BATCH and STUDIO_MAX_SEQ_LENGTH bound a training step's memory (the estimate's probe runs steps in
    # the server process): texts in memory at once, i.e. batch_size, or mini_batch_size under the cached loss.
    batch_size: int = 64
    max_seq_length: int = 512
    max_queued: int = 10  # STUDIO_MAX_QUEUED: trainings waiting at once; each visitor has one running or waiting
    # STUDIO_MAX_NEW_VISITORS_PER_MIN: new anonymous visitors (sessions without an id yet) per minute, server-wide;
    # visitors who already have an id, and signed-in users, are never refused by it.
    new_visitors_per_min: float = 60

    ENV = {
        "max_trainings": "STUDIO_MAX_TRAININGS",
        "upload_mb": "STUDIO_MAX_UPLOAD_MB",
        "dataset_rows": "STUDIO_MAX_ROWS",
        "corpus_docs": "STUDIO_MAX_CORPUS_DOCS",
        "num_epochs": "STUDIO_MAX_EPOCHS",
        "train_minutes": "STUDIO_MAX_TRAIN_MINUTES",
        "mine_rows": "STUDIO_MAX_MINE_ROWS",
        "visitor_ttl_hours": "STUDIO_VISITOR_TTL_HOURS",
        "visitor_disk_mb": "STUDIO_VISITOR_DISK_MB",
        "min_free_disk_mb": "STUDIO_MIN_FREE_DISK_MB",
        "loaded_models": "STUDIO_MAX_MODELS",
        "batch_size": "STUDIO_MAX_BATCH",
        "max_seq_length": "STUDIO_MAX_SEQ_LENGTH",
        "max_queued": "STUDIO_MAX_QUEUED",
        "new_visitors_per_min": "STUDIO_MAX_NEW_VISITORS_PER_MIN",
    }
    # On a GPU the limits that exist only because a CPU trains slowly are larger (each still its variable).
    GPU = {"num_epochs": 10, "train_minutes": 60, "dataset_rows": 200_000, "corpus_docs": 200_000, "mine_rows": 50_000}

    @classmethod
    def from_env(cls, gpu: bool = False) -> Limits:
        """The limits in force: each variable that is set, else the default (the GPU default with `gpu`)."""
        values: dict = dict(cls.GPU) if gpu else {}
        for f in fields(cls):
            raw = os.environ.get(cls.ENV[f.name], "").strip()
            if raw:
                try:
                    value = float(raw)
                except ValueError:
                    raise ValueError(f"{cls.ENV[f.name]}={raw!r} is not a number") from None
                if value <= 0:
                    raise ValueError(f"{cls.ENV[f.name]}={raw!r} must be positive")
                values[f.name] = int(value) if f.type in ("int", int) else value
        return cls(**values)

    def check_config(self, cfg) -> None:
        """Raise ConfigError naming each key over this server's limits (public mode)."""
        cached = loss_kind(cfg, "pairs") == "cached_mnrl"  # texts in memory at once are then mini_batch_size
        step_key, step = ("mini_batch_size", cfg.mini_batch_size) if cached else ("batch_size", cfg.batch_size)
        errors = []
        if cfg.num_epochs > self.num_epochs:
            errors.append(f"num_epochs: {cfg.num_epochs:g} is over this server's limit of {self.num_epochs:g} epochs")
        if step > self.batch_size:
            errors.append(
                f"{step_key}: {step} texts per step is over this server's limit of {self.batch_size}; for a bigger "
                f"batch set mini_batch_size ≤ {self.batch_size} (the cached loss: same result, little memory)"
            )
        if cfg.max_seq_length is None or cfg.max_seq_length > self.max_seq_length:
            errors.append(f"max_seq_length: set it to at most {self.max_seq_length} tokens on this server")
        if errors:
            raise ConfigError(errors, "public mode")

    def describe(self) -> str:
        """One line for the page header."""
        return (
            f"uploads ≤ {self.upload_mb:g} MB · datasets ≤ {self.dataset_rows:,} rows · corpora ≤ "
            f"{self.corpus_docs:,} documents · ≤ {self.num_epochs:g} epochs · training ≤ {self.train_minutes:g} min · "
            f"{self.max_trainings} training(s) at a time, others queue · your files are deleted "
            f"{self.visitor_ttl_hours:g} h after your last visit (≤ {self.visitor_disk_mb:g} MB)"
        )


def max_trainings() -> int:
    return Limits.from_env().max_trainings

"""The training precision of one run, measured on the run's own workload.

`precision: auto` on a CPU: a few real optimizer steps of the run's loss on batches of its own training table (its
batch size, columns and text lengths, AdamW included), in fp32 and under bf16 autocast, on a copy of the model; bf16
wins only when it is MIN_SPEEDUP faster per token. The machine-wide probe of core.models.encoding (a few short texts,
no optimizer, cached for good) chose wrong where it mattered (fp32 on a CPU whose real steps run 1.4x faster in
bf16), so it now decides only runs too short to pay for this measurement, and CPUs where it found bf16 training
MAX_SLOWER times slower (no bf16 arithmetic: a run's bf16 step would cost minutes to measure). Measured per run, never cached: a
measurement taken while the machine was busy decides one run, not every later one.

Hand-written: no library picks a CPU training precision by measuring.
"""

from __future__ import annotations

import copy
import logging
import time
from typing import Any

from core.config.schema import EmbedConfig
from core.models.devices import release_freed_memory, world_size
from core.models.encoding import can_bf16, decide, training_precision
from core.training.probe import probe_steps

log = logging.getLogger("core")

MIN_STEPS = 40  # shorter runs: the measurement (a few steps per precision) costs more than it can save
MIN_SPEEDUP = 1.15  # bf16 must be this much faster per token, or fp32 (exact, no casts) stays
MAX_SLOWER = 3.0  # the machine's probe found bf16 training this many times slower: no run's batches turn that round
MAX_S = 8.0  # seconds of measured steps per precision at most (one warm-up step and at least one measured step)


def run_precision(cfg: EmbedConfig, fmt: str, table, model, total_steps: int) -> tuple[dict[str, bool], dict[str, Any]]:
    """(the trainer's precision arguments, what decided them: the event's fields). Measures only for `auto` on a
    CPU transformer, one process, and runs of at least MIN_STEPS steps; otherwise core.models.encoding decides."""
    chosen = training_precision(cfg, model)
    why = {"precision": next(iter(chosen), "fp32"), "measured": False}
    if cfg.precision != "auto" or not can_bf16(model):
        return chosen, why | {"reason": f"precision: {cfg.precision}" if cfg.precision != "auto" else "not a CPU"}
    if world_size() > 1 or total_steps < MIN_STEPS or table is None or table.empty:
        return chosen, why | {"reason": f"{total_steps} steps: the machine's probe decides"}
    # On a CPU without bf16 arithmetic (avx2 only) one bf16 step of a run's batch takes minutes (measured: 15x the
    # fp32 step, a 5-minute probe): the machine's probe has already seen that, at a cost of seconds.
    probe = decide(model)
    slower = probe.get("train_bf16_s", 0.0) / max(1e-9, probe.get("train_fp32_s", 0.0))
    if slower >= MAX_SLOWER:
        return chosen, why | {"reason": f"bf16 training {slower:.0f}x slower in this machine's probe"}
    texts = table.drop(columns=[c for c in ("score", "label") if c in table.columns])
    rows = texts.astype(str).values.tolist()
    scores = table["score"].astype(float).tolist() if "score" in table.columns else None
    t0 = time.perf_counter()
    per_token = {}
    for bf16 in (False, True):
        trial = copy.deepcopy(model)  # the run's model keeps its weights; the copy takes the optimizer steps
        seconds, tokens = probe_steps(cfg, fmt, trial, rows, scores, bf16=bf16, max_s=MAX_S)
        per_token[bf16] = seconds / max(1.0, tokens)
        del trial
        release_freed_memory()  # the trial's activations: the next trial (and the run) would grow beside them
    bf16 = per_token[False] >= MIN_SPEEDUP * per_token[True]
    result = {
        "precision": "bf16" if bf16 else "fp32",
        "measured": True,
        "fp32_us_per_token": round(per_token[False] * 1e6, 2),
        "bf16_us_per_token": round(per_token[True] * 1e6, 2),
        "probe_s": round(time.perf_counter() - t0, 1),
    }
    log.info("training precision measured on this run's batches: %s", result)
    return ({"bf16": True, "use_cpu": True} if bf16 else {}), result

"""A run to share or reproduce: one zip of its config, events, metrics, data statistics, mined negatives, record
(command, versions, machine), log and the model card, under one top-level folder named after the run. The model's
weights only when asked: they are hundreds of MB, and the config rebuilds them."""

from __future__ import annotations

import zipfile
from collections.abc import Callable
from pathlib import Path

from core.models.load import is_model_dir
from core.runs.events import TERMINAL, read_events
from core.runs.folders import (
    CONFIG_FILE,
    DATA_FILE,
    EVENTS_FILE,
    LOG_FILE,
    METRICS_FILE,
    MINED_FILE,
    MINING_STATS_FILE,
    read_json,
)
from core.runs.record import RECORD_FILE

RUN_FILES = (CONFIG_FILE, RECORD_FILE, EVENTS_FILE, METRICS_FILE, DATA_FILE, MINED_FILE, MINING_STATS_FILE, LOG_FILE)
MODEL_CARD = "model_card.md"
TEXT_SUFFIXES = {".yaml", ".json", ".jsonl", ".log", ".md"}  # what `rewrite` sees (mined.parquet is binary)


class RunExportError(ValueError):
    pass


def run_model_dir(run_dir: str | Path) -> Path | None:
    """The model a run saved (its last `finished`/`stopped` event's model_dir), if that folder still holds one. A
    relative output_dir is taken from the folder the run was started in (its record), wherever one asks from."""
    events, _ = read_events(Path(run_dir) / EVENTS_FILE)
    saved = next((e["model_dir"] for e in reversed(events) if e.get("type") in TERMINAL and e.get("model_dir")), None)
    if not saved:
        return None
    path = Path(saved)
    if not path.is_absolute():
        started_in = (read_json(Path(run_dir) / RECORD_FILE, {}) or {}).get("command", {}).get("cwd")
        path = Path(started_in or ".") / path
    return path if is_model_dir(path) else None


def export_run(
    run_dir: str | Path,
    dest_dir: str | Path,
    include_weights: bool = False,
    rewrite: Callable[[str], str] | None = None,
) -> Path:
    """`<dest_dir>/<run id>.zip` holding `<run id>/` with the run's files (those it has), `model_card.md` (the saved
    model's README.md) and, with `include_weights`, the saved model under `<run id>/model/`. `rewrite`, when given,
    rewrites the text of the run's files and the model card (a public server hides its own paths with it). Raises
    RunExportError when `run_dir` is no run folder, or when weights are asked for and the run saved no model."""
    run_dir = Path(run_dir)
    if not (run_dir / EVENTS_FILE).is_file() and not (run_dir / CONFIG_FILE).is_file():
        raise RunExportError(f"'{run_dir}' is not a run folder (a run folder holds {CONFIG_FILE} and {EVENTS_FILE}).")
    model_dir = run_model_dir(run_dir)
    if include_weights and model_dir is None:
        raise RunExportError(f"Run {run_dir.name} saved no model (or its folder was replaced): nothing to include.")
    dest_dir = Path(dest_dir)
    dest_dir.mkdir(parents=True, exist_ok=True)
    top = run_dir.resolve().name
    target = dest_dir / f"{top}{'-with-model' if include_weights else ''}.zip"
    partial = target.with_suffix(".zip.partial")
    texts = [(run_dir / name, name) for name in RUN_FILES]
    if model_dir is not None:
        texts.append((model_dir / "README.md", MODEL_CARD))
    with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for src, name in texts:
            if not src.is_file():
                continue
            if rewrite is None or src.suffix not in TEXT_SUFFIXES:
                zf.write(src, f"{top}/{name}")
            else:
                zf.writestr(f"{top}/{name}", rewrite(src.read_text(encoding="utf-8", errors="replace")))
        if include_weights:
            for f in sorted(model_dir.rglob("*")):
                if f.is_file():
                    zf.write(f, f"{top}/model/{f.relative_to(model_dir).as_posix()}")
    partial.replace(target)  # a zip that is there is complete
    return target

"""The session's dataset: a file validated with the config's tokenizer, then selected (copied into the visitor's
uploads, the config pointed at it) or refused with the previous one kept. The Data tab draws it; a reloaded page or an
opened run restores it (studio/run_view.py)."""

from __future__ import annotations

import shutil
from functools import lru_cache
from pathlib import Path
from typing import Any

from core.config.assets import SAMPLES
from core.config.schema import ConfigError, build_config
from core.data.validate import Issue, ValidationReport, validate_file
from core.models.load import load_tokenizer
from studio.files import ROOT, sanitise_name, short_path

SAMPLES_DIR = SAMPLES
DEFAULT_SAMPLE = SAMPLES_DIR / "it_helpdesk_pairs.jsonl"


@lru_cache(maxsize=4)
def _tokenizer(model_name: str) -> Any:
    """The tokenizer for token-length statistics, or None when the model cannot be resolved (stats go without)."""

    try:
        return load_tokenizer(model_name)
    except Exception:  # a missing model must not block validation: the report just lacks token lengths
        return None


def validate(path: str | Path, config: dict[str, Any], fmt: str | None = None) -> tuple[ValidationReport, Any]:
    """Validate with the configured model's tokenizer and max_seq_length (token stats and length warnings)."""
    tokenizer = _tokenizer(config.get("model_name") or "")
    report = validate_file(
        path,
        format=None if fmt in (None, "auto") else fmt,
        tokenizer=tokenizer,
        max_seq_length=config.get("max_seq_length"),
    )
    return report, tokenizer


def dataset_entry(report: ValidationReport, path: Path) -> dict[str, Any]:
    """What ctx.dataset holds: the path that training will read, and the report (as JSON)."""
    return {"path": short_path(path), "format": report.format, "rows": report.rows, "report": report.to_dict()}


def initial_dataset(config: dict[str, Any]) -> dict[str, Any] | None:
    """The configured dataset (the bundled sample by default), validated at start-up."""
    path = Path(config.get("dataset_path") or DEFAULT_SAMPLE)
    if not path.is_absolute():
        path = (ROOT / path) if (ROOT / path).exists() else path.resolve()
    report, _ = validate(path, config)
    return dataset_entry(report, path) if report.ok else None


def select_dataset(
    src: str | Path,
    display_name: str,
    fmt: str | None,
    dataset: dict | None,
    config: dict,
    target_dir: Path | None,
    problem: str | None = None,
    max_rows: int | None = None,
) -> tuple[ValidationReport, dict | None, dict, str, Any]:
    """Validate `src`; when valid, copy it into `target_dir` (None = use in place) and select it. `problem` (an
    upload over a limit) refuses it before it is read; `max_rows` bounds the rows of a dataset.

    Returns (report, dataset, config, message, tokenizer); on refusal dataset and config are the ones given."""
    too_big = problem if target_dir is not None else None
    if too_big:
        report = ValidationReport(display_name, None, 0)
        report.errors = [Issue(too_big)]
        return report, dataset, config, f"❌ **Refused:** {too_big}", None
    report, tokenizer = validate(src, config, fmt)
    report.path = display_name
    if report.ok and max_rows and report.rows > max_rows:
        report.errors = [Issue(f"{report.rows:,} rows: this server takes at most {max_rows:,} rows per dataset")]
    if not report.ok:
        keep = f" The previous dataset (`{Path(dataset['path']).name}`) stays selected." if dataset else ""
        n = len(report.errors)
        return report, dataset, config, f"❌ **Refused `{display_name}`:** {n} error{'s' * (n != 1)}.{keep}", tokenizer
    final = Path(src)
    if target_dir is not None:
        final = target_dir / sanitise_name(display_name)
        shutil.copyfile(src, final)
    report.path = short_path(final)
    new_config = dict(
        config,
        dataset_path=short_path(final),
        dataset_name=sanitise_name(Path(display_name).stem),
        format=fmt or "auto",
    )
    try:
        new_config = build_config(new_config).to_dict()
    except ConfigError as exc:  # cannot happen for a valid config, but never lose the last good one
        return report, dataset, config, f"❌ {exc}", tokenizer
    n_warn = len(report.warnings)
    msg = f"✅ **`{final.name}`** selected: {report.format}, {report.rows} rows" + (
        f", {n_warn} warning{'s' * (n_warn != 1)}." if n_warn else ", no warnings."
    )
    return report, dataset_entry(report, final), new_config, msg, tokenizer


def api_report(report: dict[str, Any]) -> dict[str, Any]:
    """A report dict for API clients. gradio_client downloads any dict with a string "path" key as if it were a
    file, so the key is renamed to "dataset_path"."""
    out = {k: v for k, v in report.items() if k != "path"}
    return {"dataset_path": report.get("path"), **out}

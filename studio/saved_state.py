"""The visitor's working state, kept with them: the selected dataset and corpus, the config being edited and the
inputs of Compare and document search. A reload, a second tab or a visit the next day shows what they left.

It lives in the visitor's own folder (public mode; locally the workspace) as one small JSON file the server writes,
not in the browser: a visitor's folder outlives a server restart, and what comes back is the server's own record.
Everything read back is checked again as if the visitor had just typed it (config and paths through the sandbox, the
dataset validated again, a collection id by its format); what no longer holds is dropped and the page says so.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import gradio as gr

from core.config.schema import ConfigError, build_config
from core.data.validate import ValidationReport
from core.public.visitors import STATE_FILE
from studio.context import StudioContext, Visitor
from studio.datasets import dataset_entry, validate

MAX_TEXT = 20_000  # characters kept of one text input: what was typed, not a pasted book
MAX_STATE_BYTES = 512 * 1024


def state_path(v: Visitor) -> Path:
    return Path(v.root) / STATE_FILE


def read_state(v: Visitor) -> dict[str, Any]:
    """The saved state, or {} when there is none or it is unreadable (then the page starts afresh)."""
    path = state_path(v)
    try:
        if not path.is_file() or path.stat().st_size > MAX_STATE_BYTES:
            return {}
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def write_state(v: Visitor, state: dict[str, Any]) -> None:
    """Write atomically (a reader never sees half a file); text inputs are capped."""
    inputs = {
        k: (val[:MAX_TEXT] if isinstance(val, str) else val)
        for k, val in (state.get("inputs") or {}).items()
        if isinstance(val, (str, int, float, type(None)))
    }
    text = json.dumps({**state, "inputs": inputs}, ensure_ascii=False)
    if len(text.encode("utf-8")) > MAX_STATE_BYTES:
        return
    path = state_path(v)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{STATE_FILE}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def snapshot(dataset: dict[str, Any] | None, config: dict[str, Any], inputs: dict[str, Any]) -> dict[str, Any]:
    """What is saved: the dataset's path and format (its report is made again on restore), config, inputs."""
    ds = {"path": dataset["path"], "format": dataset.get("format")} if dataset else None
    return {"version": 1, "dataset": ds, "config": config, "inputs": inputs}


def restore(
    v: Visitor, saved: dict[str, Any], dataset: dict | None, config: dict[str, Any]
) -> tuple[dict | None, dict[str, Any], list[str]]:
    """(dataset, config, notes) from a saved state, each part checked; what fails is left as it is, with a note."""
    notes: list[str] = []
    new_cfg = config
    raw = saved.get("config")
    if isinstance(raw, dict):
        try:
            cfg = build_config(raw)
            v.config(cfg)  # public mode: the same checks as an edit (paths, models, limits)
            new_cfg = cfg.to_dict()
        except ConfigError as exc:
            notes.append(f"Your saved config could not be restored ({exc.errors[0]}); the defaults are shown.")
        except Exception:  # an old or edited file: the defaults rather than a broken page
            notes.append("Your saved config could not be restored; the defaults are shown.")
    corpus = new_cfg.get("corpus_path")
    if corpus and not _readable(v, corpus, "corpus_path"):
        notes.append(f"Your corpus `{Path(str(corpus)).name}` is gone (files are deleted a while after a visit).")
        new_cfg = dict(new_cfg, corpus_path=None)
    new_ds = dataset
    ds = saved.get("dataset")
    if isinstance(ds, dict) and isinstance(ds.get("path"), str):
        entry = _dataset(v, ds["path"], ds.get("format"), new_cfg)
        if entry is None:
            notes.append(
                f"Your dataset `{Path(ds['path']).name}` from your last visit is gone or no longer valid "
                "(files are deleted a while after a visit): the sample is selected."
            )
            if dataset:
                new_cfg = dict(new_cfg, dataset_path=dataset["path"])
        else:
            new_ds = entry
            new_cfg = dict(new_cfg, dataset_path=entry["path"])
    return new_ds, new_cfg, notes


def _readable(v: Visitor, path: str, key: str) -> Path | None:
    try:
        resolved = v.path(path, key)
    except ConfigError:
        return None
    return resolved if resolved.is_file() else None


def _dataset(v: Visitor, path: str, fmt: str | None, config: dict[str, Any]) -> dict | None:
    found = _readable(v, path, "dataset_path")
    if found is None:
        return None
    report: ValidationReport
    report, _ = validate(found, config, fmt)
    return dict(dataset_entry(report, found), origin="restored") if report.ok else None


def wire(load: Any, ctx: StudioContext, kept: dict[str, Any], data_status: Any) -> Any:
    """Save on every change of the dataset, the config or a kept input; restore after the page's load event.
    `kept` maps a name to a component (Textbox, Dropdown, Slider or State). Returns the restore event (what
    follows it sees the restored state)."""
    names = list(kept)
    comps = [kept[n] for n in names]

    def save(request: gr.Request, dataset: dict | None, config: dict[str, Any], *values: Any) -> None:
        try:
            write_state(ctx.visitor(request), snapshot(dataset, config, dict(zip(names, values, strict=True))))
        except OSError:  # a full disk must not break editing; the next change tries again
            pass

    def on_load(request: gr.Request, dataset: dict | None, config: dict[str, Any], *values: Any) -> dict:
        v = ctx.visitor(request)
        saved = read_state(v)
        if not saved:
            return {data_status: gr.skip()}  # (an empty dict would read as one output value)
        new_ds, new_cfg, notes = restore(v, saved, dataset, config)
        out: dict[Any, Any] = {}
        if new_ds is not dataset:
            out[ctx.dataset] = new_ds
        if new_cfg != config:
            out[ctx.config] = new_cfg
        inputs = saved.get("inputs") or {}
        for name, comp, value in zip(names, comps, values, strict=True):
            if name in inputs and inputs[name] != value:
                out[comp] = _checked_input(v, name, inputs[name])
        out[data_status] = "\n\n".join(f"⚠️ {n}" for n in notes) if notes else gr.skip()
        return out

    triggers = [ctx.dataset.change, ctx.config.change]
    for comp in comps:
        if isinstance(comp, gr.State):
            triggers.append(comp.change)
        elif isinstance(comp, gr.Textbox):
            triggers += [comp.input, comp.blur]
        else:
            triggers.append(comp.input)
    restored = load.then(
        on_load,
        [ctx.dataset, ctx.config, *comps],
        [ctx.dataset, ctx.config, data_status, *comps],
        api_visibility="private",
        show_progress="hidden",
    )
    gr.on(
        triggers,
        save,
        [ctx.dataset, ctx.config, *comps],
        None,
        api_visibility="private",
        show_progress="hidden",
        trigger_mode="always_last",
        queue=False,
    )
    return restored


def _checked_input(v: Visitor, name: str, value: Any) -> Any:
    """A saved input as the page may show it: a corpus file or collection only when still in the visitor's folder,
    a text capped."""
    if isinstance(value, str) and name.endswith("_file"):
        return str(_readable(v, value, name) or "") or None
    if isinstance(value, str) and name.endswith("collection"):
        folder = Path(v.root) / "rag" / value
        return value if value.isalnum() and len(value) == 16 and folder.is_dir() else None
    return value[:MAX_TEXT] if isinstance(value, str) else value

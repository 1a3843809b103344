"""Config tab: a form for the keys people change, a preset picker and a YAML editor, kept in sync through ctx.config.

The form is built from `core.config.schema.field_specs()` (kinds, defaults, help texts, choices), so a key's meaning lives
only in the schema. Every edit goes through `build_config`; an invalid edit shows its `key: message` lines and leaves
ctx.config at the last valid config. Form and YAML listen to user events only (`.input`, Apply), and both are
redrawn from ctx.config's `.change`, which therefore cannot loop.
"""

from __future__ import annotations

import shlex
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import gradio as gr

from core.config.assets import DEFAULT_CONFIG
from core.config.schema import (
    DEFAULT_MODEL,
    PRESETS,
    ConfigError,
    EmbedConfig,
    apply_preset,
    build_config,
    config_diff,
    config_from_yaml_text,
    field_specs,
    get_key,
    load_config,
    nest,
    safe_yaml,
    set_key,
    yaml_value,
)
from studio.context import StudioContext
from studio.files import ROOT, hide_paths, sanitise_name
from studio.model_picker import choices as model_choices

FORM_KEYS = [  # the keys people change; everything else is in the YAML editor
    "model_name",
    "mining_model_name",
    "num_epochs",
    "batch_size",
    "mini_batch_size",
    "learning_rate",
    "warmup_ratio",
    "merge_with_base",
    "max_seq_length",
    "mining.num_negatives",
    "mining.margin",
    "mining.range_min",
    "mining.range_max",
    "mining.sampling_strategy",
    "mining.skip_easiest",
    "evaluation.eval_steps",
    "evaluation.early_stopping_patience",
    "prompts.query",
    "prompts.document",
]
_SPECS = {s["key"]: s for s in field_specs()}
LABELS = {  # what the form calls each key; the key itself is in the field's help, for the YAML and the CLI
    "model_name": "Base model",
    "mining_model_name": "Mining model",
    "num_epochs": "Epochs",
    "batch_size": "Batch size",
    "mini_batch_size": "Mini-batch size",
    "learning_rate": "Learning rate",
    "warmup_ratio": "Warm-up share",
    "merge_with_base": "Share of the change kept",
    "max_seq_length": "Max tokens per text",
    "mining.num_negatives": "Hard negatives per query",
    "mining.margin": "Margin to the positive",
    "mining.range_min": "Skip the top candidates",
    "mining.range_max": "Candidates considered",
    "mining.sampling_strategy": "How negatives are picked",
    "mining.skip_easiest": "Share of easiest pairs left out",
    "evaluation.eval_steps": "Evaluate every N steps",
    "evaluation.early_stopping_patience": "Early-stopping patience",
    "prompts.query": "Query prompt",
    "prompts.document": "Document prompt",
}


def _component(
    spec: dict[str, Any], value: Any, models: list[tuple[str, str]] | None = None
) -> gr.components.Component:
    """One form field from its schema spec's kind: Dropdown for a choice, Number for a number, Textbox for text;
    model_name picks from `models` ((label, value) pairs from core.models.choices.model_choices) or takes any name."""
    key, kind, optional = spec["key"], spec["kind"], spec["optional"]
    info = f"{spec['help']}{' Leave empty for none.' if optional and kind != 'choice' else ''} (config key: {key})"
    label = LABELS.get(key, key)
    if kind == "choice":
        return gr.Dropdown(spec["choices"], value=value, label=label, info=info, interactive=True)
    if key == "model_name":
        return gr.Dropdown(models or [DEFAULT_MODEL], value=value, label=label, info=info, allow_custom_value=True)
    if optional:  # gr.Number shows and sends 0 for None: an optional number is text, empty meaning none
        return gr.Textbox(value="" if value is None else yaml_value(value), label=label, info=info, placeholder="none")
    if kind in ("int", "float"):
        return gr.Number(value=value, label=label, info=info, precision=0 if kind == "int" else None)
    return gr.Textbox(value=value or "", label=label, info=info)


def form_to_config(config: dict[str, Any], values: list[Any]) -> dict[str, Any]:
    """Form values over the current config; empty text means None (the schema then decides if that is allowed).
    Numbers typed as text ("8", "1e-5") and the form's 8.0 for an integer are the schema's to convert."""
    out = config
    for key, value in zip(FORM_KEYS, values, strict=True):
        if isinstance(value, str):
            # A prompt's spaces are part of it ("query: "); elsewhere they are typing noise.
            kept = value if key.startswith("prompts.") else value.strip()
            value = None if value.strip().lower() in ("", "none", "null") else kept
        out = set_key(out, key, value)
    return out


def visitor_command(config: dict[str, Any], name: str = "my_config") -> str:
    """Public mode: the command for the visitor's own machine, from a saved (downloaded) config; the server's folders
    are nobody's business, and a visitor cannot run anything on the server."""
    data = Path(str(config.get("dataset_path") or "your_data.jsonl")).name
    stem = Path(sanitise_name(name or "my_config")).stem
    return f"make train-embed EMBED_CONFIG={stem}.yaml dataset_path={shlex.quote(data)}"


def copy_command(config: dict[str, Any], base: str | Path = DEFAULT_CONFIG) -> str:
    """`make train-embed EMBED_CONFIG=<base> key=value …` that rebuilds `config` exactly.

    The overrides are the difference to the base file, not to the schema defaults: applied on top of a base file
    that sets other values, a diff from the defaults would not reproduce the config."""
    base = Path(base).resolve()
    items = config_diff(EmbedConfig(**absolute_paths(config)), load_config(base) if base.is_file() else None)
    return " ".join(["make", "train-embed", f"EMBED_CONFIG={shlex.quote(str(base))}", *map(shlex.quote, items)])


PATH_KEYS = [
    "dataset_path",
    "corpus_path",
    "output_dir",
    "runs_dir",
    "cache_dir",
    "mining.exclude_path",
    "model_name",
    "mining_model_name",
]


def absolute_paths(config: dict[str, Any]) -> dict[str, Any]:
    """`config` with every relative path made absolute from the server's working directory (where the studio's
    runs resolve them), so its command works from the project folder or anywhere else. Model names that are not
    local folders stay hub ids."""
    out = config
    for key in PATH_KEYS:
        value = get_key(out, key)
        if not isinstance(value, str) or not value or Path(value).is_absolute():
            continue
        if key.endswith("model_name") and not Path(value).exists():
            continue
        out = set_key(out, key, str(Path(value).resolve()))
    return out


def _shown(value: Any, public: bool) -> Any:
    return hide_paths(value, public) if isinstance(value, str) else value


def errors_md(errors: list[str]) -> str:
    return "**Not applied: the last valid config is kept.**\n\n" + "\n".join(f"- `{e}`" for e in errors)


def create_config_tab(ctx: StudioContext) -> dict[str, Any]:
    """The Config tab: presets, the form, the YAML editor, copy-as-command, save and load. Also registers the
    `set_config`, `load_config`, `current_config` and `model_choices` API endpoints."""
    ui = _edit_layout(ctx)
    _files_layout(ctx, ui)
    _wire_edits(ctx, ui)
    _wire_redraw(ctx, ui)
    _wire_models(ctx, ui)
    _wire_files(ctx, ui)
    _wire_api(ctx)
    return {
        "preset": ui.preset,
        "editor": ui.editor,
        "command": ui.command,
        "errors": ui.errors,
        **{f"field:{k}": f for k, f in zip(FORM_KEYS, ui.fields, strict=True)},
    }


def _edit_layout(ctx: StudioContext) -> SimpleNamespace:
    """The preset picker, the form (one field per FORM_KEYS entry) and the YAML editor, each with its errors."""
    cfg0 = ctx.config.value
    # the file the copy-as-command starts from (last saved or loaded)
    ui = SimpleNamespace(base=gr.State(str(DEFAULT_CONFIG)))
    with gr.Row():
        ui.preset = gr.Dropdown(
            list(PRESETS),
            value="balanced",
            label="Preset",
            scale=3,
            info="balanced = the defaults; fast = no mined negatives (0.6x the time, less gain); quality = 8 "
            "epochs at a lower learning rate with two mined negatives; memory = a big batch computed in small pieces",
        )
        ui.apply_preset_btn = gr.Button("Apply preset", scale=1)
    with gr.Row():
        with gr.Column(scale=3):
            with gr.Group():
                # Public: the base model only until the visitor is known (_wire_models lists theirs).
                models = model_choices(None if ctx.public else ctx.visitor(None), cfg0, cfg0.get("model_name"))
                ui.fields = [_component(_SPECS[k], _shown(get_key(cfg0, k), ctx.public), models) for k in FORM_KEYS]
            ui.errors = gr.Markdown()
        with gr.Column(scale=2):
            ui.editor = gr.Code(
                hide_paths(EmbedConfig(**cfg0).to_yaml(), ctx.public),
                language="yaml",
                label="config.yaml (every key)",
                interactive=True,
                lines=24,
                max_lines=40,
            )
            ui.apply_yaml = gr.Button("Apply YAML")
            ui.yaml_errors = gr.Markdown()  # beside the editor: a YAML error is read where it was typed
            ui.last_form = gr.State(None)  # the form's last refused config: the same refusal is not warned twice
            ui.last_yaml = gr.State(None)  # Apply's click also blurs the editor: one text is checked (and warned) once
    return ui


def _files_layout(ctx: StudioContext, ui: SimpleNamespace) -> None:
    """Copy as command, save and load."""
    label = (
        "Copy as command, for your own machine (Save config below, download it, put your data file beside it)"
        if ctx.public
        else f"Copy as command (reproduces this config; run it in {ROOT})"
    )
    ui.command = gr.Code(
        visitor_command(ctx.config.value) if ctx.public else copy_command(ctx.config.value),
        language="shell",
        interactive=False,
        lines=2,
        wrap_lines=True,
        label=label,
        elem_id="copy-command",
    )
    with gr.Row():
        ui.name = gr.Textbox("my_config", label="Save as", scale=2)
        ui.save = gr.Button("Save config", scale=1)
        ui.download = gr.File(label="Saved config", interactive=False, scale=2)
        ui.load = gr.UploadButton("Load config (YAML)", file_types=[".yaml", ".yml"], scale=1)


def _validated(
    ctx: StudioContext, candidate: dict[str, Any] | str, shown_in: gr.Markdown, request: gr.Request | None = None
) -> dict:
    """The new config, or only the errors (in `shown_in`) when it is refused. In public mode paths and models
    are checked here too, so a refusal shows where it was typed (the run checks them again)."""
    try:
        cfg = config_from_yaml_text(candidate) if isinstance(candidate, str) else build_config(candidate)
        ctx.visitor(request).config(cfg)
    except ConfigError as exc:
        gr.Warning("Config not applied: " + "; ".join(exc.errors[:3]))
        return {shown_in: errors_md(exc.errors)}
    return {ctx.config: cfg.to_dict(), shown_in: ""}


def _wire_edits(ctx: StudioContext, ui: SimpleNamespace) -> None:
    """The form, Apply YAML and Apply preset: each edit becomes ctx.config when it is valid."""

    def on_form(request: gr.Request, config: dict[str, Any], refused: dict | None, *values: Any) -> dict:
        candidate = form_to_config(config, list(values))
        if candidate == refused:  # Enter, then leaving the field: one refusal, said once (its errors stay shown)
            return gr.skip()
        out = _validated(ctx, candidate, ui.errors, request)
        return out | {ui.last_form: None if ctx.config in out else candidate}

    def on_yaml(text: str, last: str | None, request: gr.Request) -> dict:
        if text == last:
            return gr.skip()
        return _validated(ctx, text, ui.yaml_errors, request) | {ui.last_yaml: text}

    def on_preset(config: dict[str, Any], name_value: str, request: gr.Request) -> dict:
        return _validated(ctx, apply_preset(config, name_value), ui.errors, request)

    fields = ui.fields
    # Text and numbers apply when the field is left or Enter is pressed, not per keystroke: a redraw from
    # ctx.config arriving mid-typing would otherwise overwrite what is being typed. A pick from a list is atomic.
    triggers = [f.input if isinstance(f, gr.Dropdown) and not f.allow_custom_value else f.blur for f in fields]
    triggers += [f.submit for f in fields if isinstance(f, (gr.Textbox, gr.Number))]
    gr.on(
        triggers,
        on_form,
        [ctx.config, ui.last_form, *fields],
        [ctx.config, ui.errors, ui.last_form],
        api_visibility="private",
        trigger_mode="always_last",
    )
    yaml_io = ([ui.editor, ui.last_yaml], [ctx.config, ui.yaml_errors, ui.last_yaml])
    ui.apply_yaml.click(on_yaml, *yaml_io, api_visibility="private")
    ui.editor.blur(on_yaml, *yaml_io, api_visibility="private")
    ui.apply_preset_btn.click(on_preset, [ctx.config, ui.preset], [ctx.config, ui.errors], api_visibility="private")


def _wire_redraw(ctx: StudioContext, ui: SimpleNamespace) -> None:
    """Form, YAML and command redrawn from ctx.config, whoever changed it."""
    fields = ui.fields

    def redraw(config: dict[str, Any], base_path: str, name: str) -> list[Any]:
        values = [_shown(get_key(config, k), ctx.public) for k in FORM_KEYS]
        return [
            *(
                ("" if v is None else v if isinstance(v, str) else yaml_value(v)) if isinstance(f, gr.Textbox) else v
                for v, f in zip(values, fields, strict=True)
            ),
            hide_paths(EmbedConfig(**config).to_yaml(), ctx.public),
            visitor_command(config, name) if ctx.public else copy_command(config, base_path),
        ]

    ctx.config.change(
        redraw,
        [ctx.config, ui.base, ui.name],
        [*fields, ui.editor, ui.command],
        api_visibility="private",
        show_progress="hidden",
    )


def _wire_models(ctx: StudioContext, ui: SimpleNamespace) -> None:
    """model_name's list again when a run is shown (the page's load shows the visitor's newest) or ends (its model
    joins the list), for this visitor only: a public visitor sees their own runs' models, never the server's."""
    field = ui.fields[FORM_KEYS.index("model_name")]

    def relist(config: dict[str, Any], current: str | None, request: gr.Request) -> dict:
        return gr.update(choices=model_choices(ctx.visitor(request), config, current))

    hidden = {"api_visibility": "private", "show_progress": "hidden"}
    for event in (ctx.run.change, ctx.run_ended.change):
        event(relist, [ctx.config, field], [field], **hidden)


def _wire_files(ctx: StudioContext, ui: SimpleNamespace) -> None:
    """Save config and Load config: the file saved or loaded becomes the copy-as-command's base."""

    def on_save(config: dict[str, Any], file_name: str, request: gr.Request) -> tuple[str, str, str]:
        path = ctx.visitor(request).root / "configs" / (Path(sanitise_name(file_name or "config")).stem + ".yaml")
        if ctx.public:  # the copy a visitor downloads names their files, never the server's folders
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(hide_paths(EmbedConfig(**config).to_yaml()), encoding="utf-8")
            return str(path), str(path), visitor_command(config, path.stem)
        EmbedConfig(**config).save(path)
        gr.Info(f"Saved {path.name}")
        return str(path), str(path), copy_command(config, path)

    def on_load(file: str | None, request: gr.Request) -> dict:
        if not file:
            return gr.skip()
        v = ctx.visitor(request)
        try:
            cfg = load_config(file)
            v.config(cfg)
        except ConfigError as exc:
            gr.Warning(f"{Path(file).name} not loaded: " + "; ".join(exc.errors[:3]))
            return {ui.errors: errors_md(exc.errors)}
        # A stable copy in the workspace, so the copy-as-command can name it after the upload's temp file is gone.
        path = v.root / "configs" / sanitise_name(Path(file).name)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(Path(file).read_bytes())
        return {
            ctx.config: cfg.to_dict(),
            ui.errors: "",
            ui.base: str(path),
            ui.command: visitor_command(cfg.to_dict(), path.stem) if ctx.public else copy_command(cfg.to_dict(), path),
        }

    ui.save.click(on_save, [ctx.config, ui.name], [ui.download, ui.base, ui.command], api_visibility="private")
    ui.load.upload(on_load, [ui.load], [ctx.config, ui.errors, ui.base, ui.command], api_visibility="private")


def config_update(config: dict[str, Any], update: Any) -> EmbedConfig:
    """`update` (a mapping with nested or dotted keys, or its YAML/JSON text; an optional "preset" applied first)
    over the session's config, as the form applies its fields. Raises ConfigError."""
    if isinstance(update, str):
        update = safe_yaml(update, "set_config") or {}
    if not isinstance(update, dict):
        raise ConfigError(["config_update: a mapping of key: value"], "set_config")
    extra = nest(update)
    preset = extra.pop("preset", None)
    return build_config(apply_preset(config, preset) if preset else config, extra, source="set_config")


def _wire_api(ctx: StudioContext) -> None:
    """The endpoints a script needs to do what this tab does, on hidden components."""
    with gr.Column(visible=False):
        api_in, api_out = gr.JSON(), gr.JSON()
        api_text = gr.Code(language="yaml")
        set_btn, load_btn, get_btn, models_btn = gr.Button(), gr.Button(), gr.Button(), gr.Button()

    def checked(request: gr.Request, make: Any, *args: Any) -> dict:
        """Checked as the form and the YAML editor check (the schema; in public mode the visitor's paths and models
        too). A refused config leaves the session's config as it was."""
        try:
            cfg = make(*args)
            ctx.visitor(request).config(cfg)
        except ConfigError as exc:
            return {api_out: {"ok": False, "config": None, "errors": exc.errors}}
        return {api_out: {"ok": True, "config": cfg.to_dict(), "errors": []}, ctx.config: cfg.to_dict()}

    def set_config(changes: Any, config: dict[str, Any], request: gr.Request) -> dict:
        """API `/set_config`. Input: `changes`, the keys to change as a mapping (nested or dotted, e.g.
        {"num_epochs": 2, "mining.num_negatives": 1}, optional "preset") or its YAML/JSON text, applied over the
        session's config as the form applies its fields. Output: {ok, config, errors}."""
        return checked(request, config_update, config, changes)

    def load_config_text(config_yaml: str, request: gr.Request) -> dict:
        """API `/load_config`. Input: `config_yaml`, a whole config as YAML text (keys it leaves out take their
        defaults), as the YAML editor and Load config take it. Output: {ok, config, errors}."""
        return checked(request, config_from_yaml_text, config_yaml)

    def current_config(config: dict[str, Any]) -> dict[str, Any]:
        """API `/current_config`. No input. Output: this session's config (what `/start_training` runs)."""
        return EmbedConfig(**config).to_dict()

    def list_models(config: dict[str, Any], request: gr.Request) -> dict[str, Any]:
        """API `/model_choices`. No input. Output: {"models": [{label, value}]}: the models the pickers of the
        Config, Compare and Search-your-documents tabs offer this visitor (bundled, their fine-tuned ones, cached,
        suggested), each value usable as model_name, model_a or model_b."""
        pairs = model_choices(ctx.visitor(request), config)
        return {"models": [{"label": label, "value": value} for label, value in pairs]}

    set_btn.click(set_config, [api_in, ctx.config], [api_out, ctx.config], api_name="set_config")
    load_btn.click(load_config_text, [api_text], [api_out, ctx.config], api_name="load_config")
    get_btn.click(current_config, [ctx.config], [api_out], api_name="current_config")
    models_btn.click(list_models, [ctx.config], [api_out], api_name="model_choices")

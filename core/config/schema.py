"""One typed schema for every setting: YAML files, `key=value` overrides, presets, the CLI, make and the studio.

Precedence, lowest first: schema defaults < preset < YAML file < `key=value` overrides.
The studio builds its form from `field_specs()`, so a key's default and help text live only here.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from types import UnionType
from typing import Any, Literal, Union, get_args, get_origin

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic.fields import FieldInfo

# The key and text helpers, importable from here with the schema they serve.
from core.config.assets import names_data, shipped_paths
from core.config.keys import flatten, get_key, nest, set_key  # noqa: F401
from core.config.keys import merged as merge
from core.config.text import (  # noqa: F401
    MAX_YAML_BYTES,
    MAX_YAML_DEPTH,
    ConfigError,
    parse_overrides,
    safe_yaml,
    short_value,
    yaml_value,
)

DEFAULT_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
SEED_DATASET_PATH = "data/raw/embedding_dataset.jsonl"  # where the seed walk-through puts its data
MAX_BATCH = 8192  # beyond any real batch; bounds what a typo (or a stranger) can ask of the server
IR_METRICS = ["accuracy@1", "accuracy@5", "accuracy@10", "map@100", "mrr@10", "ndcg@10", "recall@10"]
OTHER_METRICS = ["spearman", "pearson", "triplet_accuracy"]
# A family name (as the seed guide writes them) selects the family's concrete keys.
METRIC_FAMILIES = {
    "accuracy": ["accuracy@1", "accuracy@5", "accuracy@10"],
    "map": ["map@100"],
    "mrr": ["mrr@10"],
    "ndcg": ["ndcg@10"],
    "recall": ["recall@10"],
}


class _Block(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class MiningConfig(_Block):
    enabled: bool = Field(True, description="Mine hard negatives for pairs (and triplets with augment_triplets).")
    num_negatives: int = Field(
        1,
        ge=0,
        le=50,
        description="Hard negatives mined per query, one training row each (a row costs about as much again). 1 at "
        "learning_rate 4e-5 gains what 2 at 2e-5 do in half the steps; 2 a little more on questions like the training "
        "data's (quality preset). 0 = in-batch negatives only: faster, less accurate (fast preset).",
    )
    batch_size: int = Field(
        16,
        ge=1,
        le=MAX_BATCH,
        description="Encoding batch size of the mining model (16 suits a CPU, where bigger batches encode slower; "
        "raise it on a GPU).",
    )
    margin: float | None = Field(
        None,
        ge=0,
        description="Skip candidates too close to the positive: a candidate is dropped when its score > "
        "positive_score - margin (absolute) or > positive_score * (1 - margin) (relative). None = no margin: the "
        "candidates the model ranks above the positive are the ones it most needs to learn from. Set 0.05 "
        "(relative) when the corpus holds unlabelled positives (e.g. several chunks that answer one question). "
        "Near-duplicates of the positive's text are never negatives.",
    )
    margin_type: Literal["relative", "absolute"] = Field("relative", description="How `margin` is measured.")
    range_min: int = Field(0, ge=0, description="Skip the `range_min` most similar candidates (rank 0 = most similar).")
    range_max: int = Field(50, ge=1, le=10_000, description="Consider candidates up to this rank.")
    max_score: float | None = Field(None, ge=-1, le=1, description="Drop candidates above this (likely positives).")
    min_score: float | None = Field(None, ge=-1, le=1, description="Drop candidates scoring below this (too easy).")
    sampling_strategy: Literal["top", "random"] = Field("top", description="The top candidates, or a random sample.")
    skip_easiest: float = Field(
        0.0,
        ge=0,
        lt=1,
        description="Pairs: leave out this share of the rows whose mined negative is furthest below the positive "
        "(their loss and gradient are already small), for fewer steps. 0.25: 3/4 of the steps, NDCG@10 within "
        "the seed spread on two seeds.",
    )
    augment_triplets: bool = Field(False, description="Triplet data: also mine num_negatives more (its own are kept).")
    output_format: Literal["triplet", "n-tuple"] = Field(
        "triplet",
        description="How a query's negatives become training rows (the library's names): triplet = one (query, "
        "positive, negative) row per negative, so each pair is trained once per negative; n-tuple = one row (query, "
        "positive, negative_1..n). triplet learns a little more from the same negatives, for about 1.3x the "
        "training time.",
    )
    exclude_path: str | None = Field(
        None, description="JSONL of {query, negative} rows never to use as negatives (written by the Negatives tab)."
    )

    @field_validator("range_max")
    @classmethod
    def _range(cls, v: int, info: Any) -> int:
        if v <= info.data.get("range_min", 0):
            raise ValueError(f"must be greater than range_min ({info.data.get('range_min')})")
        return v


class EvaluationConfig(_Block):
    metrics: list[str] = Field(
        default_factory=lambda: list(IR_METRICS),
        description="Metrics shown in tables, curves and the model card. A family name selects the family: accuracy "
        "(@1/5/10), map (@100), mrr (@10), ndcg (@10), recall (@10).",
    )
    eval_steps: int | None = Field(
        None,
        ge=1,
        description="Evaluate every N steps during training (None = up to 4 times per run, as many as "
        "15% of the training compute pays for; the final evaluation always runs).",
    )
    save_best_model: bool = Field(
        False,
        description="Keep the checkpoint with the best NDCG@10 (Spearman for scored pairs) instead of the final "
        "weights. Off by default: on a held-out split of a few hundred queries the 'best' of a short run is mostly "
        "noise; worth it for runs of several epochs that may overfit (early stopping implies it).",
    )
    keep_base_if_worse: bool = Field(
        True, description="Keep the base model when the trained one scores below it in the final evaluation."
    )
    early_stopping_patience: int | None = Field(None, ge=1, description="Stop after N evaluations with no gain.")
    max_corpus_size: int | None = Field(
        1000, ge=1, description="During training, evaluate against at most this many documents; the final one uses all."
    )

    @field_validator("metrics")
    @classmethod
    def _metrics(cls, v: list[str]) -> list[str]:
        allowed = IR_METRICS + OTHER_METRICS
        bad = [m for m in v if m not in allowed and str(m).lower() not in METRIC_FAMILIES]
        if bad:
            raise ValueError(f"unknown metric(s) {bad}; allowed: {allowed} or a family {sorted(METRIC_FAMILIES)}")
        keys = [k for m in v for k in METRIC_FAMILIES.get(str(m).lower(), [m])]
        return list(dict.fromkeys(keys))


class PromptsConfig(_Block):
    query: str | None = Field(
        None, description="Text put before every query (e.g. e5's 'query: '); None = the model's own saved prompt."
    )
    document: str | None = Field(
        None, description="Text put before every document (e.g. e5's 'passage: '); None = the model's own saved prompt."
    )


class EmbedConfig(_Block):
    # data
    dataset_name: str = Field(
        "embedding_dataset", description="A label for the data, or a file/directory/hub dataset id."
    )
    dataset_path: str | None = Field(None, description="Path to the training file (JSONL, JSON, CSV, TSV, Parquet).")
    corpus_path: str | None = Field(None, description="Extra documents for mining and evaluation (a file of texts).")
    format: Literal["auto", "pairs", "triplets", "scored"] = Field("auto", description="Data format (auto = detect).")
    sample_size: float | None = Field(
        None, gt=0, description="Use a seeded random sample: a count (>1) or a fraction (<=1)."
    )
    test_size: float = Field(0.1, ge=0, description="Held-out split for evaluation: a count (>1) or a fraction (<1).")
    seed: int = Field(42, ge=0, le=2**32 - 1, description="Seed for sampling, splitting, mining and training.")
    # models
    model_name: str = Field(DEFAULT_MODEL, description="Model to fine-tune: a local directory or a hub id.")
    mining_model_name: str | None = Field(None, description="Model that mines negatives (None = the base model).")
    max_seq_length: int | None = Field(256, ge=8, le=8192, description="Truncate texts to this many tokens.")
    # training
    num_epochs: float = Field(1, gt=0, le=100, description="Passes over the training data.")
    batch_size: int = Field(
        32, ge=1, le=MAX_BATCH, description="Pairs per batch; MNRL uses the others as in-batch negatives."
    )
    mini_batch_size: int | None = Field(
        None, ge=1, le=MAX_BATCH, description="Use the cached loss with this mini-batch: big batches in little memory."
    )
    learning_rate: float = Field(4e-5, gt=0, le=1, description="Peak learning rate.")
    weight_decay: float = Field(0.01, ge=0, description="AdamW weight decay.")
    warmup_ratio: float = Field(
        0.0,
        ge=0,
        le=1,
        description="Fraction of steps with a linear warm-up. 0 by default: a one-epoch fine-tune of a trained "
        "model needs none, and warm-up steps are a real share of a short run.",
    )
    lr_scheduler: Literal["constant_with_warmup", "linear", "cosine"] = Field(
        "constant_with_warmup",
        description="Learning rate after warm-up. Constant suits short fine-tunes: a decaying rate spends half the run "
        "at a fraction of learning_rate.",
    )
    merge_with_base: float | None = Field(
        0.5,
        gt=0,
        le=1,
        description="WiSE-FT: keep this share of what training changed (base + share x (trained - base)); None or 1 = "
        "the trained weights. 0.5 trades a little in-domain gain for questions worded unlike the training data.",
    )
    loss: Literal["auto", "mnrl", "symmetric_mnrl", "cached_mnrl", "cosent"] = Field(
        "auto", description="auto = MNRL (cached with mini_batch_size), CoSENT for scores; symmetric_mnrl: q->d + d->q."
    )
    matryoshka_dims: list[int] | None = Field(None, description="Wrap the loss in MatryoshkaLoss with these dims.")
    gradient_checkpointing: bool = Field(False, description="Trade compute for memory.")
    attention_dropout: float | None = Field(
        0.0,
        ge=0,
        le=0.5,
        description="Dropout on attention probabilities while training (None = the model's own, 0.1 for MiniLM). At 0 "
        "torch's fused attention runs: half the memory of a step on 256-token documents, same accuracy.",
    )
    gather_across_devices: bool = Field(
        True, description="With several processes (--nproc), in-batch negatives come from every process's batch."
    )
    precision: Literal["auto", "fp32", "bf16", "fp16"] = Field(
        "auto",
        description="Training precision. auto = bf16 on a GPU that supports it; on a CPU bf16 autocast where a short "
        "measurement on this machine finds it faster (about 2x where the CPU computes bf16 natively), else fp32.",
    )
    encode_precision: Literal["auto", "fp32", "bf16"] = Field(
        "auto",
        description="Weights used to encode corpora (mining, evaluations, indexes) on a CPU: auto = bf16 where a short "
        "measurement on this machine finds it faster with the same embeddings (0.99 cosine), else fp32.",
    )
    logging_steps: int = Field(1, ge=1, description="Write a train_step event every N steps.")
    # outputs
    output_dir: str = Field("outputs/embedding_model", description="Where the final (best) model is saved.")
    runs_dir: str = Field("runs", description="Folder of run folders (config, events, metrics, checkpoints).")
    cache_dir: str = Field(".cache/embeddings", description="Cache of mining embeddings by (model, text).")
    resume: bool | str = Field(False, description="true = continue the latest run of this config; or a checkpoint dir.")
    report_to: Literal["none", "tensorboard"] = Field("none", description="Also log to TensorBoard.")
    # blocks
    mining: MiningConfig = Field(default_factory=MiningConfig)
    evaluation: EvaluationConfig = Field(default_factory=EvaluationConfig)
    prompts: PromptsConfig = Field(default_factory=PromptsConfig)

    @field_validator("matryoshka_dims")
    @classmethod
    def _dims(cls, v: list[int] | None) -> list[int] | None:
        if v is None:
            return v
        if not v or any(d < 1 or d > 65_536 for d in v) or len(set(v)) != len(v):
            raise ValueError("must be a non-empty list of distinct positive dimensions, e.g. [384, 256, 128, 64]")
        return sorted(v, reverse=True)

    @field_validator("test_size", "sample_size")
    @classmethod
    def _count_or_fraction(cls, v: float | None) -> float | None:
        if v is not None and v > 1 and v != int(v):
            raise ValueError("a count must be a whole number, a fraction must be below 1")
        return v

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False, allow_unicode=True)

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.to_yaml(), encoding="utf-8")
        return path


# {dotted key: value}. fast: no mining, half a row's compute (LEVERS.md: 0.6x the time, 0.72x the gain); memory:
# effective batch 32 (in-batch negatives) in mini-batches of 8, big-batch quality in little memory.
PRESETS: dict[str, dict[str, Any]] = {
    "balanced": {},  # the schema defaults are the balanced recipe
    "fast": {"mining.num_negatives": 0},
    "quality": {"num_epochs": 8, "batch_size": 16, "learning_rate": 1e-5, "mining.num_negatives": 2},
    "memory": {"batch_size": 32, "mini_batch_size": 8, "gradient_checkpointing": True},
}


# The schema's dotted keys; walking them in a nested config is core/config/keys.py's.
def schema_fields(model: type[BaseModel] = EmbedConfig, prefix: str = "") -> list[tuple[str, FieldInfo]]:
    """(dotted key, pydantic field) for every setting of the schema, in declaration order."""
    out = []
    for name, info in model.model_fields.items():
        ann = info.annotation
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            out += schema_fields(ann, f"{prefix}{name}.")
        else:
            out.append((prefix + name, info))
    return out


def keys() -> list[str]:
    """Every dotted key of the schema."""
    return [key for key, _ in schema_fields()]


def _suggest(key: str) -> str:
    close = difflib.get_close_matches(key, keys() + ["preset"], n=1, cutoff=0.5)
    return f"; did you mean '{close[0]}'?" if close else ""


def _format_errors(exc: ValidationError) -> list[str]:
    lines = []
    for err in exc.errors():
        key = ".".join(str(p) for p in err["loc"] if not isinstance(p, int)) or "config"
        if err["type"] == "extra_forbidden":
            lines.append(f"unknown key '{key}'{_suggest(key)}")
            continue
        msg = err["msg"].removeprefix("Value error, ")
        lines.append(f"{key}: {msg} (got {short_value(err.get('input'))})")
    return lines


def build_config(
    data: dict[str, Any] | None = None, overrides: list[str] | dict[str, Any] | None = None, source: str | None = None
) -> EmbedConfig:
    """Validate a raw mapping (+ overrides) into an EmbedConfig, applying its `preset` underneath."""
    data = dict(data or {})
    if isinstance(overrides, list):
        overrides = parse_overrides(overrides)
    overrides = dict(overrides or {})
    given = overrides.pop("preset", None)
    preset = given or data.pop("preset", None) or "balanced"
    data.pop("preset", None)
    if preset not in PRESETS:
        raise ConfigError([f"preset: unknown preset {preset!r}; allowed: {sorted(PRESETS)}"], source)
    if given:
        data = _without_restated_defaults(data, PRESETS[preset])
    merged = merge(data, overrides)
    if overrides.get("dataset_path") and "dataset_name" not in overrides:
        # The file's label would name the wrong data in run folders and the model card.
        merged["dataset_name"] = Path(str(overrides["dataset_path"])).stem
    elif (
        "dataset_path" not in overrides and overrides.get("dataset_name") and names_data(str(overrides["dataset_name"]))
    ):
        # `dataset_name=FILE`, a hub id or the toy name on the command line names the data: the file's dataset_path
        # must not silently replace it.
        merged["dataset_path"] = None
    merged = merge(nest(PRESETS[preset]), merged)
    try:
        return EmbedConfig(**merged)
    except ValidationError as exc:
        raise ConfigError(_format_errors(exc), source) from None


def _without_restated_defaults(data: dict[str, Any], preset: dict[str, Any]) -> dict[str, Any]:
    """`data` less the preset's keys whose value restates the default ("num_epochs: 1" states no choice)."""
    defaults = flatten(EmbedConfig().to_dict())

    def restated(key: str, value: Any) -> bool:
        try:  # `learning_rate: 4e-5` is the text "4e-5" to YAML 1.1, and still the default
            return value == defaults[key] or (isinstance(defaults[key], float) and float(value) == defaults[key])
        except (TypeError, ValueError):
            return False

    return nest({k: v for k, v in flatten(data).items() if not (k in preset and k in defaults and restated(k, v))})


def apply_preset(config: dict[str, Any], name: str) -> dict[str, Any]:
    """A resolved config with preset `name` applied the way `preset=NAME` applies to a file: keys the preset sets
    take its value unless the config chose another one (a value that is neither the default nor any preset's)."""
    if name not in PRESETS:
        raise ConfigError([f"preset: unknown preset {name!r}; allowed: {sorted(PRESETS)}"])
    defaults = flatten(EmbedConfig().to_dict())
    out = dict(config)
    for key in {k for p in PRESETS.values() for k in p}:
        unchosen = [defaults.get(key)] + [p[key] for p in PRESETS.values() if key in p]
        current = get_key(out, key)
        if (defaults.get(key) if current is None else current) in unchosen:
            out = set_key(out, key, PRESETS[name].get(key, defaults.get(key)))
    return out


def load_config(path: str | Path | None = None, overrides: list[str] | dict[str, Any] | None = None) -> EmbedConfig:
    """Load a YAML config (safe loader) and apply overrides. No path = the schema defaults."""
    data: dict[str, Any] = {}
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise ConfigError([f"config file not found: {path}"], str(path))
        try:
            data = safe_yaml(path.read_text(encoding="utf-8-sig"), str(path)) or {}
        except UnicodeDecodeError:
            raise ConfigError(["not a UTF-8 text file"], str(path)) from None
        if not isinstance(data, dict):
            raise ConfigError(["the top level must be a mapping of key: value"], str(path))
        data = shipped_paths(data, path)
    return build_config(data, overrides, str(path) if path else None)


def config_from_yaml_text(text: str) -> EmbedConfig:
    """The studio's YAML editor: text -> config, or ConfigError with line-numbered YAML errors."""
    data = safe_yaml(text or "", "YAML editor") or {}
    if not isinstance(data, dict):
        raise ConfigError(["the top level must be a mapping of key: value"], "YAML editor")
    return build_config(data, source="YAML editor")


def config_diff(cfg: EmbedConfig, base: EmbedConfig | None = None) -> list[str]:
    """`key=value` items that turn `base` (default: the schema defaults) into `cfg` — for 'copy as command'."""
    old, new = flatten((base or EmbedConfig()).to_dict()), flatten(cfg.to_dict())
    return [f"{k}={yaml_value(v)}" for k, v in new.items() if old.get(k) != v]


def _without_none(annotation: Any) -> tuple[tuple[Any, ...], bool]:
    """The types a field takes other than None, and whether None is allowed."""
    args = get_args(annotation) if get_origin(annotation) in (Union, UnionType) else (annotation,)
    kinds = tuple(a for a in args if a is not type(None))
    return kinds, len(kinds) < len(args)


def field_kind(annotation: Any) -> tuple[str, bool]:
    """(kind, optional) of a field, read from its type: kind is "choice" (a Literal), "bool", "int", "float",
    "text", "list" or "mixed" (several types, e.g. `resume: bool | str`); optional when None is allowed."""
    kinds, optional = _without_none(annotation)
    if len(kinds) != 1:
        return "mixed", optional
    if get_origin(kinds[0]) is Literal:
        return "choice", optional
    if get_origin(kinds[0]) in (list, tuple, set):
        return "list", optional
    simple = {bool: "bool", int: "int", float: "float", str: "text"}
    return simple.get(kinds[0], "mixed"), optional


def field_specs() -> list[dict[str, Any]]:
    """Every key with its kind, default, help text and allowed values — what the studio's form is built from."""
    specs = []
    for key, info in schema_fields():
        kind, optional = field_kind(info.annotation)
        specs.append(
            {
                "key": key,
                "kind": kind,
                "optional": optional,
                "default": info.get_default(call_default_factory=True),
                "help": info.description or "",
                "choices": list(get_args(_without_none(info.annotation)[0][0])) if kind == "choice" else None,
            }
        )
    return specs


def config_table() -> str:
    """The README's table of every key (kept equal to the schema by tests/test_config.py)."""
    rows = ["| key | default | meaning |", "|---|---|---|"]
    for s in field_specs():
        choices = f" One of: {', '.join(s['choices'])}." if s["choices"] else ""
        rows.append(f"| `{s['key']}` | `{yaml_value(s['default'])}` | {s['help']}{choices} |")
    return "\n".join(rows)

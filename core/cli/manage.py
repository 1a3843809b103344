"""`python -m core` commands about data, configs and runs: validate, config, validate-config, mine, estimate,
runs, stop, export-run, setup-dirs."""

from __future__ import annotations

import json
from pathlib import Path

from core.config.schema import load_config
from core.data.validate import read_texts, split_dataset, validate_file
from core.export.run_zip import export_run
from core.models.load import load_tokenizer, resolve_miner, resolve_model
from core.retrieval.negatives import mine_run
from core.runs.folders import EVENTS_FILE, list_runs, request_stop
from core.training.estimate import estimate, estimate_markdown
from core.training.mining import read_exclusions
from core.training.prepare import resolve_dataset


def cmd_validate(a) -> int:

    tokenizer = load_tokenizer(a.model) if a.model else None
    max_len = a.max_seq_length
    report = validate_file(a.file, format=a.format, tokenizer=tokenizer, max_seq_length=max_len)
    print(json.dumps(report.to_dict(), indent=2, ensure_ascii=False) if a.json else report.to_text())
    return 0 if report.ok else 1


def cmd_config(a) -> int:

    overrides = list(a.overrides)
    if a.config_file and a.file:  # with --config, the first positional is an override, not a file
        overrides.insert(0, a.file)
    cfg = load_config(a.config_file or a.file, overrides)
    print(cfg.to_yaml(), end="")
    return 0


def cmd_validate_config(a) -> int:
    """Config and the dataset it points at, as a user would check before training."""

    cfg = load_config(a.config, a.overrides)
    print(f"config: {a.config} is valid")
    print(f"model_name: {cfg.model_name} -> {resolve_model(cfg.model_name)}")
    miner = resolve_miner(cfg.mining_model_name, cfg.model_name)
    print(f"mining_model_name: {cfg.mining_model_name or cfg.model_name} -> {miner}")
    path = resolve_dataset(cfg)
    report = validate_file(
        path,
        format=None if cfg.format == "auto" else cfg.format,
        tokenizer=load_tokenizer(cfg.model_name),
        max_seq_length=cfg.max_seq_length,
    )
    print(report.to_text())
    if report.ok:  # what training will use when sample_size/test_size exceed the data
        notes: list[str] = []
        split_dataset(report.data, cfg.sample_size, cfg.test_size, cfg.seed, notes=notes)
        for note in notes:
            print(f"warning: {note}")
    if cfg.corpus_path:  # the files training reads besides the dataset: a typo is found now, not mid-run
        print(f"corpus_path: {len(read_texts(cfg.corpus_path))} texts")
    if cfg.mining.exclude_path:
        print(f"mining.exclude_path: {len(read_exclusions(cfg.mining.exclude_path))} excluded negatives")
    return 0 if report.ok else 1


def cmd_mine(a) -> int:

    cfg = load_config(a.config, a.overrides)
    run_dir, result = mine_run(cfg)  # an InspectError is printed by main()
    print(json.dumps(result.stats, indent=2))
    print(f"mined rows: {run_dir / 'mined.parquet'}")
    return 0


def cmd_estimate(a) -> int:
    """Seconds per phase of a training with this config on this machine, from a short measured probe."""

    est = estimate(load_config(a.config, a.overrides))
    print(json.dumps(est, indent=2) if a.json else estimate_markdown(est))
    return 0


def cmd_runs(a) -> int:

    if not Path(a.runs_dir).is_dir():
        raise ValueError(f"no runs folder at {a.runs_dir}")
    runs = list_runs(a.runs_dir)
    for r in runs:
        ndcg = lambda m: f"{m['ndcg@10']:.4f}" if "ndcg@10" in m else "-"  # noqa: E731
        print(f"{r.run_id}  {r.state:<11} {r.dataset}  ndcg@10 {ndcg(r.before)} -> {ndcg(r.after)}")
    if not runs:
        print(f"no runs in {a.runs_dir}")
    return 0


def cmd_stop(a) -> int:

    if not Path(a.run_dir, EVENTS_FILE).is_file():
        raise ValueError(f"no run at {a.run_dir} (a run folder holds {EVENTS_FILE})")
    request_stop(a.run_dir)
    print(f"stop requested: {a.run_dir}")
    return 0


def cmd_export_run(a) -> int:
    path = export_run(a.run_dir, a.out, include_weights=a.with_weights)
    print(f"run zip: {path} ({path.stat().st_size / 1e6:.1f} MB{', with the model' if a.with_weights else ''})")
    return 0


SEED_DIRS = ["configs", "scripts", "data", "models", "checkpoints", "outputs"]


# The guide's step-3 config, as its text writes it (tests/fixtures/guide/step3_my_embedding.yaml).
SEED_CONFIG = """# Dataset configuration
dataset_name: "toy_embedding_dataset"
sample_size: 500
test_size: 100
seed: 42

# Model configuration
model_name: "sentence-transformers/all-MiniLM-L6-v2"
mining_model_name: "sentence-transformers/all-MiniLM-L6-v2"

# Training parameters
num_epochs: 4
batch_size: 32
learning_rate: 2e-5
weight_decay: 0.01
warmup_ratio: 0.1

# Cache directory
cache_dir: "/tmp/embedding_cache"
"""


def cmd_setup_dirs(a) -> int:
    root = Path(a.root)
    for d in SEED_DIRS:
        (root / d).mkdir(parents=True, exist_ok=True)
    cfg = root / "configs" / "my_embedding.yaml"
    if not cfg.exists():
        cfg.write_text(SEED_CONFIG, encoding="utf-8")
    print(f"created {root}/{{{','.join(SEED_DIRS)}}}; starter config: {cfg}")
    return 0

"""`python -m core <command>`: validate | config | train | mine | estimate | eval | search | similarity | runs | stop | setup-dirs.

Exit codes: 0 success, 1 invalid input or a failed run, 2 usage error. Bad input prints a message, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from .cli_eval import add_eval_commands
from .cli_rag import add_rag_commands
from .cli_train import add_train_command
from .errors import positive_int

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def _cmd_validate(a) -> int:
    from .data import validate_file
    from .models import load_tokenizer

    tokenizer = load_tokenizer(a.model) if a.model else None
    max_len = a.max_seq_length
    report = validate_file(a.file, format=a.format, tokenizer=tokenizer, max_seq_length=max_len)
    print(json.dumps(report.to_dict(), indent=2, ensure_ascii=False) if a.json else report.to_text())
    return 0 if report.ok else 1


def _cmd_config(a) -> int:
    from .config import load_config

    overrides = list(a.overrides)
    if a.config_file and a.file:  # with --config, the first positional is an override, not a file
        overrides.insert(0, a.file)
    cfg = load_config(a.config_file or a.file, overrides)
    print(cfg.to_yaml(), end="")
    return 0


def _cmd_validate_config(a) -> int:
    """Config and the dataset it points at, as a user would check before training."""
    from .config import load_config
    from .data import read_texts, split_dataset, validate_file
    from .mining import read_exclusions
    from .models import load_tokenizer, resolve_model
    from .prepare import resolve_dataset

    cfg = load_config(a.config, a.overrides)
    print(f"config: {a.config} is valid")
    for key in ("model_name", "mining_model_name"):
        name = getattr(cfg, key) or cfg.model_name
        print(f"{key}: {name} -> {resolve_model(name)}")
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


def _cmd_mine(a) -> int:
    from .config import load_config
    from .negatives import mine_run

    cfg = load_config(a.config, a.overrides)
    run_dir, result = mine_run(cfg)  # an InspectError is printed by main()
    print(json.dumps(result.stats, indent=2))
    print(f"mined rows: {run_dir / 'mined.parquet'}")
    return 0


def _cmd_estimate(a) -> int:
    """Seconds per phase of a training with this config on this machine, from a short measured probe."""
    from .config import load_config
    from .estimate import estimate, estimate_markdown

    est = estimate(load_config(a.config, a.overrides))
    print(json.dumps(est, indent=2) if a.json else estimate_markdown(est))
    return 0


def _cmd_runs(a) -> int:
    from .runs import list_runs

    if not Path(a.runs_dir).is_dir():
        raise ValueError(f"no runs folder at {a.runs_dir}")
    runs = list_runs(a.runs_dir)
    for r in runs:
        ndcg = lambda m: f"{m['ndcg@10']:.4f}" if "ndcg@10" in m else "-"  # noqa: E731
        print(f"{r.run_id}  {r.state:<11} {r.dataset}  ndcg@10 {ndcg(r.before)} -> {ndcg(r.after)}")
    if not runs:
        print(f"no runs in {a.runs_dir}")
    return 0


def _cmd_stop(a) -> int:
    from .runs import EVENTS_FILE, request_stop

    if not Path(a.run_dir, EVENTS_FILE).is_file():
        raise ValueError(f"no run at {a.run_dir} (a run folder holds {EVENTS_FILE})")
    request_stop(a.run_dir)
    print(f"stop requested: {a.run_dir}")
    return 0


SEED_DIRS = ["configs", "scripts", "data", "models", "checkpoints", "outputs"]
SEED_CONFIG = """# Embedding fine-tuning config (see README for every key)
dataset_name: "toy_embedding_dataset"
model_name: "sentence-transformers/all-MiniLM-L6-v2"
mining_model_name: "sentence-transformers/all-MiniLM-L6-v2"
cache_dir: "/tmp/embedding_cache"
num_epochs: 1
batch_size: 16
learning_rate: 2.0e-5
sample_size: 500
test_size: 100
"""


def _cmd_setup_dirs(a) -> int:
    root = Path(a.root)
    for d in SEED_DIRS:
        (root / d).mkdir(parents=True, exist_ok=True)
    cfg = root / "configs" / "my_embedding.yaml"
    if not cfg.exists():
        cfg.write_text(SEED_CONFIG, encoding="utf-8")
    print(f"created {root}/{{{','.join(SEED_DIRS)}}}; starter config: {cfg}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m core", description="Embedding fine-tuning engine")
    sub = p.add_subparsers(dest="command", required=True)
    default_cfg = "assets/configs/default.yaml"

    v = sub.add_parser("validate", help="validate a dataset file")
    v.add_argument("file")
    v.add_argument("--format", choices=["pairs", "triplets", "scored"])
    v.add_argument("--model", help="tokenizer for token-length statistics (e.g. all-MiniLM-L6-v2)")
    v.add_argument("--max-seq-length", type=positive_int, default=256)
    v.add_argument("--json", action="store_true")
    v.set_defaults(fn=_cmd_validate)

    c = sub.add_parser("config", help="print the resolved config")
    c.add_argument("file", nargs="?")
    c.add_argument("--config", dest="config_file", help="the config file (same as FILE)")
    c.add_argument("overrides", nargs="*", metavar="key=value")
    c.set_defaults(fn=_cmd_config)

    vc = sub.add_parser("validate-config", help="check a config, its models and its dataset")
    vc.add_argument("--config", default=default_cfg)
    vc.add_argument("overrides", nargs="*", metavar="key=value")
    vc.set_defaults(fn=_cmd_validate_config)

    add_train_command(sub, default_cfg)  # core/cli_train.py

    m = sub.add_parser("mine", help="mine hard negatives only")
    m.add_argument("--config", default=default_cfg)
    m.add_argument("overrides", nargs="*", metavar="key=value")
    m.set_defaults(fn=_cmd_mine)

    es = sub.add_parser("estimate", help="how long a training with this config takes here, per phase")
    es.add_argument("--config", default=default_cfg)
    es.add_argument("--json", action="store_true")
    es.add_argument("overrides", nargs="*", metavar="key=value")
    es.set_defaults(fn=_cmd_estimate)

    add_eval_commands(sub, default_cfg)  # eval, search, similarity (core/cli_eval.py)

    r = sub.add_parser("runs", help="list runs")
    r.add_argument("--runs-dir", default="runs")
    r.set_defaults(fn=_cmd_runs)

    st = sub.add_parser("stop", help="ask a running training to stop (keeps the best model so far)")
    st.add_argument("run_dir")
    st.set_defaults(fn=_cmd_stop)

    sd = sub.add_parser("setup-dirs", help="create embeddingFT/{configs,scripts,data,models,checkpoints,outputs}")
    sd.add_argument("--root", default="embeddingFT")
    sd.set_defaults(fn=_cmd_setup_dirs)
    add_rag_commands(sub)  # index build/search, rag-dataset, export-onnx (core/cli_rag.py)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command in ("search", "similarity") and not args.model:
        args.model = ["outputs/embedding_model"]
    if args.command == "similarity" and len(args.texts) < 2:
        print("similarity needs at least two texts", file=sys.stderr)
        return 2
    from .errors import cli_message, expected

    try:
        return args.fn(args)
    except Exception as exc:  # the user's errors get one paragraph; bugs keep their traceback
        if not expected(exc):
            raise
        print(cli_message(exc), file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\naborted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())

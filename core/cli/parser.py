"""The command line's grammar: every `python -m core` command and option, and which handler runs it
("module:function" in this package). Only argparse here, so `--help` and a typo answer at once: a handler's module
(and torch with it) is imported only when its command runs (core/__main__.py)."""

from __future__ import annotations

import argparse
import os

from core.config.assets import DEFAULT_CONFIG


def positive_int(text: str) -> int:
    """argparse type for counts (-k, lengths): a whole number ≥ 1, refused by argparse with the option's name."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} must be at least 1")
    return value


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "")
    return int(value) if value.isdigit() else default


def _index_options(p) -> None:
    p.add_argument(
        "--chunk-tokens",
        type=int,
        default=None,
        help="tokens per chunk (default and upper bound: the model's max_seq_length less special tokens)",
    )
    p.add_argument("--overlap", type=int, default=32, help="tokens shared by consecutive chunks")
    p.add_argument("--exact-limit", type=int, help="above this many chunks, an HNSW index (default 50,000)")
    p.add_argument("--max-file-mb", type=float, help="larger files are skipped (default 50)")
    p.add_argument("--batch-size", type=int, default=64)


def _train_command(sub, default_cfg: str) -> None:
    t = sub.add_parser("train", help="mine, train, evaluate; writes runs/<id>/ and output_dir")
    t.add_argument("--config", default=default_cfg)
    t.add_argument("--run-dir", help="write into this run folder (the studio uses this)")
    t.add_argument("--tensorboard", action="store_true", help="log to TensorBoard and serve it while training")
    t.add_argument("--tensorboard-port", type=int, default=6006)
    t.add_argument(
        "--nproc",
        type=int,
        default=1,
        help="data-parallel processes on this machine (one per GPU), started with torchrun",
    )
    t.add_argument("--nnodes", type=int, default=_env_int("NNODES", 1), help="machines in the run (env NNODES)")
    t.add_argument("--node-rank", type=int, default=_env_int("NODE_RANK", 0), help="this machine's index (NODE_RANK)")
    t.add_argument(
        "--master-addr",
        default=os.environ.get("MASTER_ADDR") or None,
        help="address of the machine with node rank 0 (MASTER_ADDR)",
    )
    t.add_argument("--master-port", type=int, default=_env_int("MASTER_PORT", 29500), help="its port (MASTER_PORT)")
    t.add_argument("overrides", nargs="*", metavar="key=value")
    t.set_defaults(fn="train:cmd_train")


def _eval_commands(sub, default_cfg: str) -> None:
    e = sub.add_parser("eval", help="evaluate a model on the config's test split or a file")
    e.add_argument("--model", default="outputs/embedding_model")
    e.add_argument("--config", default=default_cfg)
    e.add_argument("--data", help="evaluate on every row of this file instead of the test split")
    e.add_argument("--baseline", action="store_true", help="also evaluate the config's base model")
    e.add_argument("overrides", nargs="*", metavar="key=value")
    e.set_defaults(fn="evaluate:cmd_eval")

    s = sub.add_parser("search", help="top-k documents for a query")
    s.add_argument("query")
    s.add_argument("--model", action="append", help="repeat to compare models", default=None)
    s.add_argument("--corpus", help="file of documents (default: the config's dataset documents)")
    s.add_argument("--config", default=default_cfg)
    s.add_argument("-k", type=positive_int, default=5)
    s.set_defaults(fn="evaluate:cmd_search")

    si = sub.add_parser("similarity", help="cosine similarity of the first text to the others")
    si.add_argument("texts", nargs="+")
    si.add_argument("--model", action="append", default=None)
    si.set_defaults(fn="evaluate:cmd_similarity")


def _rag_commands(sub) -> None:
    ix = sub.add_parser("index", help="build or search a persistent document index")
    isub = ix.add_subparsers(dest="index_command", required=True)
    b = isub.add_parser("build", help="index a folder (or file) of documents; re-running updates it")
    b.add_argument("--model", default="outputs/embedding_model")
    b.add_argument("--documents", required=True, help="a folder (read recursively) or one file")
    b.add_argument("--out", required=True, help="index folder")
    _index_options(b)
    b.set_defaults(fn="rag:cmd_index_build")
    s = isub.add_parser("search", help="top-k chunks for a query")
    s.add_argument("query")
    s.add_argument("--index", required=True)
    s.add_argument("--model", help="encode queries with this model or ONNX copy (default: the index's model)")
    s.add_argument("-k", type=positive_int, default=5)
    s.set_defaults(fn="rag:cmd_index_search")

    r = sub.add_parser("rag-dataset", help="retrieve contexts per question and write an LLM training JSONL")
    r.add_argument("--embedding-model", default="outputs/embedding_model")
    r.add_argument("--documents", required=True)
    r.add_argument("--output", required=True, help="JSONL file to write")
    r.add_argument("--questions", help="a .txt (one per line) or a pairs/triplets/questions table")
    r.add_argument("-k", "--k", type=positive_int, default=3, dest="k")
    r.add_argument("--format", choices=["plain", "alpaca", "messages"], default="plain")
    r.add_argument("--index", help="index folder (default: <output>_index next to the output)")
    r.add_argument("--compare-base", action="store_true", help="also report recall/MRR of the base model")
    r.add_argument("--base-model", help="the base model for --compare-base (default: from the model card)")
    _index_options(r)
    r.set_defaults(fn="rag:cmd_rag_dataset")

    e = sub.add_parser("export-onnx", help="an onnxruntime copy of a model (optionally int8), checked against torch")
    e.add_argument("--model", default="outputs/embedding_model")
    e.add_argument("--out", required=True)
    e.add_argument("--quantize", choices=["int8"], help="also write an int8 dynamically quantised model")
    e.set_defaults(fn="rag:cmd_export_onnx")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m core", description="Embedding fine-tuning engine")
    sub = p.add_subparsers(dest="command", required=True)
    default_cfg = str(DEFAULT_CONFIG)  # shipped with the package: found from any working directory

    v = sub.add_parser("validate", help="validate a dataset file")
    v.add_argument("file")
    v.add_argument("--format", choices=["pairs", "triplets", "scored"])
    v.add_argument("--model", help="tokenizer for token-length statistics (e.g. all-MiniLM-L6-v2)")
    v.add_argument("--max-seq-length", type=positive_int, default=256)
    v.add_argument("--json", action="store_true")
    v.set_defaults(fn="manage:cmd_validate")

    c = sub.add_parser("config", help="print the resolved config")
    c.add_argument("file", nargs="?")
    c.add_argument("--config", dest="config_file", help="the config file (same as FILE)")
    c.add_argument("overrides", nargs="*", metavar="key=value")
    c.set_defaults(fn="manage:cmd_config")

    vc = sub.add_parser("validate-config", help="check a config, its models and its dataset")
    vc.add_argument("--config", default=default_cfg)
    vc.add_argument("overrides", nargs="*", metavar="key=value")
    vc.set_defaults(fn="manage:cmd_validate_config")

    _train_command(sub, default_cfg)

    m = sub.add_parser("mine", help="mine hard negatives only")
    m.add_argument("--config", default=default_cfg)
    m.add_argument("overrides", nargs="*", metavar="key=value")
    m.set_defaults(fn="manage:cmd_mine")

    es = sub.add_parser("estimate", help="how long a training with this config takes here, per phase")
    es.add_argument("--config", default=default_cfg)
    es.add_argument("--json", action="store_true")
    es.add_argument("overrides", nargs="*", metavar="key=value")
    es.set_defaults(fn="manage:cmd_estimate")

    _eval_commands(sub, default_cfg)  # eval, search, similarity

    r = sub.add_parser("runs", help="list runs")
    r.add_argument("--runs-dir", default="runs")
    r.set_defaults(fn="manage:cmd_runs")

    st = sub.add_parser("stop", help="ask a running training to stop (keeps the best model so far)")
    st.add_argument("run_dir")
    st.set_defaults(fn="manage:cmd_stop")

    ex = sub.add_parser("export-run", help="zip a run to share or reproduce it (config, record, events, metrics, ...)")
    ex.add_argument("run_dir")
    ex.add_argument("--out", default=".", help="folder for <run id>.zip (default: the current one)")
    ex.add_argument("--with-weights", action="store_true", help="also include the saved model's weights")
    ex.set_defaults(fn="manage:cmd_export_run")

    sd = sub.add_parser("setup-dirs", help="create embeddingFT/{configs,scripts,data,models,checkpoints,outputs}")
    sd.add_argument("--root", default="embeddingFT")
    sd.set_defaults(fn="manage:cmd_setup_dirs")
    _rag_commands(sub)  # index build/search, rag-dataset, export-onnx
    return p

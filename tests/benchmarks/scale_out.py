"""2 data-parallel processes vs 1 with the same global batch: `python -m tests.benchmarks.scale_out [--rows N]`.

Trains the bundled model on the IT-helpdesk sample through the CLI twice (`--nproc 2` x batch 8, then one process x
batch 16) and prints a markdown table of the engine's own timings (metrics.json) and NDCG@10. Not part of
`make bench`: the result is copied into tests/benchmarks/SCALE_OUT.md by hand, with the machine it ran on.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "assets" / "samples" / "it_helpdesk_pairs.jsonl"


def run(work: Path, name: str, nproc: int, batch: int, args: argparse.Namespace, threads: int | None = None) -> dict:
    overrides = [
        f"dataset_path={work / 'pairs.jsonl'}",
        f"runs_dir={work / name}",
        f"output_dir={work / name / 'model'}",
        f"cache_dir={work / 'cache'}",
        f"batch_size={batch}",
        f"max_seq_length={args.max_seq_length}",
        "test_size=0.2",
        "num_epochs=1",
        "mining.num_negatives=1",
        "evaluation.save_best_model=false",
    ]
    t0 = time.time()
    proc = subprocess.run(
        [sys.executable, "-m", "core", "train", "--nproc", str(nproc), *overrides],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "HF_HUB_OFFLINE": "1", **({"OMP_NUM_THREADS": str(threads)} if threads else {})},
    )
    wall = time.time() - t0
    if proc.returncode:
        raise SystemExit(proc.stdout[-2000:] + proc.stderr[-2000:])
    run_dir = next(p for p in (work / name).iterdir() if (p / "metrics.json").exists())
    m = json.loads((run_dir / "metrics.json").read_text())
    threads = threads or (1 if nproc > 1 else os.cpu_count())  # torchrun gives each process 1 thread
    return {
        "name": name,
        "threads": threads,
        "nproc": nproc,
        "batch": batch,
        "wall_s": wall,
        "steps": m["steps"],
        **m["timing"],
        "ndcg": m["after"]["ndcg@10"],
        "base": m["before"]["ndcg@10"],
    }


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--rows", type=int, default=258)
    p.add_argument("--max-seq-length", type=int, default=128)
    args = p.parse_args()
    work = Path(tempfile.mkdtemp(prefix="scale_out_"))
    lines = SAMPLE.read_text(encoding="utf-8").splitlines()[: args.rows]
    (work / "pairs.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    results = [run(work, "two", 2, 8, args), run(work, "one", 1, 16, args), run(work, "one_t1", 1, 16, args, 1)]
    print(
        f"load average: {os.getloadavg()}; {os.cpu_count()} cores; {args.rows} rows, max_seq_length "
        f"{args.max_seq_length}, global batch 16, 1 epoch"
    )
    print(
        "| processes x batch | threads each | steps | train s | train samples/s | mining + baseline s | final eval s | "
        "end-to-end s | NDCG@10 (base) |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in results:
        print(
            f"| {r['nproc']} x {r['batch']} | {r['threads']} | {r['steps']} | {r['train_s']:.1f} | {r['train_samples_per_s']:.2f} | "
            f"{r['mining_s'] + r['baseline_eval_s']:.1f} | {r['final_eval_s']:.1f} | {r['wall_s']:.1f} | "
            f"{r['ndcg']:.4f} ({r['base']:.4f}) |"
        )


if __name__ == "__main__":
    main()

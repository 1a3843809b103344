"""One training step of the MedQuAD default's workload under a few options (LEVERS.md, "Tokens, not rows"): 32 rows
of (query, positive, a seeded MedQuAD document as negative) at max_seq_length 256, the run's length-chunked MNRL,
AdamW. Prints the median seconds per step after a warm-up step.

    .venv/bin/python -m tests.benchmarks.step_options 3 fp32 eager neg128 autocast bf16-weights

Options: fp32 (as trained: torch's fused attention), eager (eager attention), neg128 (negatives cut to 128 tokens),
autocast (bf16 autocast), bf16-weights (the model in bf16, no master copy: the ceiling of that lever).
Needs the bench's train sample (`make bench`, or medquad.build_protocol) in test-artifacts/bench."""

from __future__ import annotations

import argparse
import copy
import json
import random
import statistics
import time

import torch

from core.config.schema import build_config
from core.models.load import bundled_model_path, load_model
from core.training.losses import build_loss

from .common import ROOT


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("steps", type=int)
    ap.add_argument("options", nargs="+", choices=["fp32", "eager", "neg128", "autocast", "bf16-weights"])
    a = ap.parse_args()
    rows = [json.loads(line) for line in (ROOT / "test-artifacts/bench/medquad_train_sample.jsonl").open()]
    rng = random.Random(0)
    docs = [r["document"] for r in rows]
    batches = []
    for _ in range(a.steps + 1):
        b = rng.sample(rows, 32)
        batches.append([[r["query"] for r in b], [r["document"] for r in b], [rng.choice(docs) for _ in b]])
    base = load_model(bundled_model_path(), max_seq_length=256)
    for option in a.options:
        model = copy.deepcopy(base)
        if option == "eager":
            model[0].auto_model.set_attn_implementation("eager")
        if option == "bf16-weights":
            model = model.to(torch.bfloat16)
        loss_fn = build_loss(build_config({}), "triplets", model)
        optimizer = torch.optim.AdamW(model.parameters(), lr=4e-5)
        model.train()
        times = []
        for i, columns in enumerate(batches):
            t0 = time.perf_counter()
            features = [dict(model.preprocess(col)) for col in columns]
            if option == "neg128":
                features[2] = dict(
                    model.tokenizer(columns[2], truncation=True, max_length=128, padding=True, return_tensors="pt")
                )
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=option == "autocast"):
                loss = loss_fn(features, None)
            loss.backward()
            optimizer.step()
            optimizer.zero_grad()
            if i:
                times.append(time.perf_counter() - t0)
        print(f"{option}: {statistics.median(times):.2f} s/step (min {min(times):.2f}, {len(times)} steps)", flush=True)


if __name__ == "__main__":
    main()

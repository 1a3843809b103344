"""Training-recipe levers, each trained by hand with sentence-transformers on one MedQuAD protocol (all sample rows,
1 epoch, batch 32, lr 2e-5) and scored by the benchmark's shared evaluator; one JSON line per run is appended to
WORK/levers.jsonl. The table in LEVERS.md came from these runs at --train-size 600 --dev-queries 200
--distractors 600.

    python -m tests.benchmarks.levers "pairs constant" sched=constant_with_warmup
    python -m tests.benchmarks.levers "1 negative" negatives=1 sched=constant_with_warmup
    options: negatives=N  sched=linear|constant_with_warmup  warmup=0.1  scale=20  batches=random|hard
             dirs=default|sym|gte  hardness=in_batch_negatives|hard_negatives|all_negatives  alpha=5
             loss=gist (GISTEmbedLoss, the base model as guide) gmargin=0 contrast=all|qd  wise=0.5,0.8 (WiSE-FT)
"""

from __future__ import annotations

import argparse
import json
import random
import time
from functools import partial
from pathlib import Path

import numpy as np

from . import medquad
from .common import bundled_model


def hard_batch_sampler():
    """A batch sampler that fills each batch with a random seed row and its nearest rows (query -> other rows'
    positives, by the base model), so in-batch negatives are hard. Hand-written: sentence-transformers has no such
    sampler. Rows that look like false negatives for each other (relative margin) never share a batch."""
    from sentence_transformers.base.sampler import DefaultBatchSampler

    class HardBatchSampler(DefaultBatchSampler):
        def __init__(
            self,
            dataset,
            batch_size,
            drop_last,
            valid_label_columns=None,
            generator=None,
            seed=0,
            *,
            qe,
            pe,
            margin=0.05,
            k=64,
        ):
            super().__init__(dataset, batch_size, drop_last, valid_label_columns, generator, seed)
            self.qe, self.pe, self.margin = qe, pe, margin
            s = qe @ pe.T
            self.own = np.diag(s).copy()
            np.fill_diagonal(s, -np.inf)
            self.nn = np.argsort(-s, axis=1)[:, :k]
            self.q, self.p = list(dataset["query"]), list(dataset["positive"])

        def _fits(self, b: int, batch: list[int]) -> bool:
            return all(
                self.q[a] != self.q[b]
                and self.p[a] != self.p[b]
                and self.qe[a] @ self.pe[b] <= (1 - self.margin) * self.own[a]
                and self.qe[b] @ self.pe[a] <= (1 - self.margin) * self.own[b]
                for a in batch
            )

        def _batches(self) -> list[list[int]]:
            rng = random.Random(self.seed + self.epoch)
            order = list(range(len(self.q)))
            rng.shuffle(order)
            free, out = set(order), []
            for i in order:
                if i not in free:
                    continue
                batch, frontier = [i], list(self.nn[i])
                free.discard(i)
                while frontier and len(batch) < self.batch_size:
                    j = int(frontier.pop(0))
                    if j in free and self._fits(j, batch):
                        batch.append(j)
                        free.discard(j)
                        frontier.extend(self.nn[j][:8])
                for j in [j for j in free if self._fits(j, batch)][: self.batch_size - len(batch)]:
                    batch.append(j)  # top up with other rows
                    free.discard(j)
                out.append(batch)
            rng.shuffle(out)
            return out

        def __iter__(self):
            yield from (b for b in self._batches() if not (self.drop_last and len(b) < self.batch_size))

        def __len__(self) -> int:
            return -(-len(self.q) // self.batch_size)

    return HardBatchSampler


def _gist_kw(opts: dict[str, str]) -> dict:
    both = opts.get("contrast", "all") == "all"
    return {"contrast_anchors": both, "contrast_positives": both}


def run(name: str, opts: dict[str, str], train_size: int, dev_queries: int, distractors: int, work: Path) -> dict:
    from datasets import Dataset
    from sentence_transformers import (
        SentenceTransformer,
        SentenceTransformerTrainer,
        SentenceTransformerTrainingArguments,
    )
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss
    from sentence_transformers.sentence_transformer.training_args import BatchSamplers
    from sentence_transformers.util import mine_hard_negatives

    p = medquad.build_protocol(train_size, dev_queries, distractors)
    model = SentenceTransformer(bundled_model(), local_files_only=True)
    queries, docs = [r["query"] for r in p.train], [r["document"] for r in p.train]
    ds = Dataset.from_dict({"query": queries, "positive": docs})
    t0 = time.time()
    if int(opts.get("negatives", 0)):  # the engine's mining defaults: every document, relative margin 0.05
        ds = mine_hard_negatives(
            ds,
            model,
            corpus=list(dict.fromkeys(docs + p.distractors)),
            range_min=0,
            range_max=50,
            relative_margin=0.05,
            num_negatives=int(opts["negatives"]),
            sampling_strategy="top",
            batch_size=64,
            verbose=False,
        )
    sampler = BatchSamplers.NO_DUPLICATES
    if opts.get("batches") == "hard":
        enc = partial(model.encode, batch_size=64, normalize_embeddings=True, convert_to_numpy=True)
        sampler = partial(hard_batch_sampler(), qe=enc(queries), pe=enc(docs))
    t_prep = time.time()
    loss_kw: dict = {"scale": float(opts.get("scale", 20))}
    if opts.get("dirs") == "gte":
        loss_kw["directions"] = ("query_to_doc", "query_to_query", "doc_to_query", "doc_to_doc")
    elif opts.get("dirs") == "sym":
        loss_kw.update(directions=("query_to_doc", "doc_to_query"), partition_mode="per_direction")
    if "hardness" in opts:
        loss_kw.update(hardness_mode=opts["hardness"], hardness_strength=float(opts.get("alpha", 5)))
    args = SentenceTransformerTrainingArguments(
        output_dir=str(work / "levers-checkpoints"),
        num_train_epochs=1,
        per_device_train_batch_size=32,
        learning_rate=2e-5,
        warmup_ratio=float(opts.get("warmup", 0.1)),
        lr_scheduler_type=opts.get("sched", "linear"),
        batch_sampler=sampler,
        seed=42,
        save_strategy="no",
        eval_strategy="no",
        logging_steps=5,
        report_to="none",
        disable_tqdm=True,
        dataloader_pin_memory=False,
    )
    if opts.get("loss") == "gist":  # in-batch candidates the base model scores above the positive are masked
        from sentence_transformers.sentence_transformer.losses import GISTEmbedLoss

        guide = SentenceTransformer(bundled_model(), local_files_only=True)
        loss = GISTEmbedLoss(
            model, guide, temperature=1 / loss_kw["scale"], margin=float(opts.get("gmargin", 0)), **_gist_kw(opts)
        )
    else:
        loss = MultipleNegativesRankingLoss(model, **loss_kw)
    SentenceTransformerTrainer(model=model, args=args, train_dataset=ds, loss=loss).train()
    t_train = time.time()
    raw = medquad.shared_evaluator(p)(model)
    wise = {}
    for alpha in [float(a) for a in opts.get("wise", "").split(",") if a]:  # WiSE-FT: base + alpha * (tuned - base)
        base = SentenceTransformer(bundled_model(), local_files_only=True)
        tuned, start = model.state_dict(), base.state_dict()
        base.load_state_dict(
            {k: start[k] + alpha * (tuned[k] - start[k]) if tuned[k].is_floating_point() else tuned[k] for k in tuned}
        )
        wise[alpha] = float(medquad.shared_evaluator(p)(base)["dev_cosine_ndcg@10"])
    return {
        "wise_ndcg@10": wise,
        "name": name,
        "opts": opts,
        "train_size": train_size,
        "rows": len(ds),
        "prep_s": round(t_prep - t0, 1),
        "train_s": round(t_train - t_prep, 1),
        **{m: float(raw[f"dev_cosine_{m}"]) for m in medquad.METRICS},
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("name")
    ap.add_argument("options", nargs="*", help="key=value (see above)")
    ap.add_argument("--train-size", type=int, default=600)
    ap.add_argument("--dev-queries", type=int, default=200)
    ap.add_argument("--distractors", type=int, default=600)
    ap.add_argument("--work", default="test-artifacts/bench")
    a = ap.parse_args()
    work = Path(a.work).resolve()
    work.mkdir(parents=True, exist_ok=True)
    row = run(a.name, dict(o.split("=", 1) for o in a.options), a.train_size, a.dev_queries, a.distractors, work)
    print(json.dumps(row))
    with (work / "levers.jsonl").open("a") as f:
        f.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()

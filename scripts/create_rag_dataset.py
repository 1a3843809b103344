"""The guide's RAG step: retrieve contexts from your documents for each question and write an LLM training set.

    python scripts/create_rag_dataset.py --embedding_model outputs/embedding_model \
        --documents data/raw/domain_docs --output data/processed/rag_enhanced_data.jsonl

A thin wrapper of `python -m core rag-dataset` (same options; underscores or dashes in flag names)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from anywhere: the project's `core` first


def main(argv: list[str]) -> int:
    from core.__main__ import main as core_main

    flags = [
        a.split("=", 1)[0].replace("_", "-") + a[len(a.split("=", 1)[0]) :] if a.startswith("--") else a for a in argv
    ]
    return core_main(["rag-dataset", *flags])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

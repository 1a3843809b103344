"""`python -m core eval | search | similarity`: measure a model on the config's test split or a file, and ask it
for the top-k documents of a query or the similarity of texts. `add_eval_commands(subparsers)` registers them."""

from __future__ import annotations

from core.config.schema import load_config
from core.data.validate import DataError, read_texts, split_dataset, validate_file
from core.evaluation.evaluators import build_evaluator, documents_of, evaluate, metrics_table
from core.models.load import load_model, model_prompts, set_prompts
from core.retrieval.search import get_index, similarity
from core.training.prepare import load_data


def cmd_eval(a) -> int:

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

    if a.corpus:
        return read_texts(a.corpus)
    cfg = load_config(a.config, [])
    _, df, report = load_data(cfg)
    return documents_of(df, report.format) or list(dict.fromkeys(list(df["doc1"]) + list(df["doc2"])))


def cmd_search(a) -> int:

    corpus = _corpus_for(a)
    for model in a.model:
        print(f"== {model} ({len(corpus)} documents)")
        for hit in get_index(model, corpus).search(a.query, a.k):
            text = hit.text if len(hit.text) <= 110 else hit.text[:107] + "..."
            print(f"{hit.rank:>3}. {hit.score:.4f}  {text}")
    return 0


def cmd_similarity(a) -> int:

    for model in a.model:
        for text, score in zip(a.texts[1:], similarity(model, a.texts[0], a.texts[1:])):
            print(f"{score:.4f}  [{model}]  {a.texts[0]!r} <-> {text!r}")
    return 0

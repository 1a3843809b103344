"""`python -m core eval | search | similarity`: measure a model on the config's test split or a file, and ask it
for the top-k documents of a query or the similarity of texts. `add_eval_commands(subparsers)` registers them."""

from __future__ import annotations

from .errors import positive_int


def _cmd_eval(a) -> int:
    from .config import load_config
    from .data import DataError, read_texts, split_dataset, validate_file
    from .evaluation import build_evaluator, documents_of, evaluate, metrics_table
    from .models import load_model, model_prompts, set_prompts
    from .prepare import load_data

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
    from .config import load_config
    from .data import read_texts
    from .evaluation import documents_of
    from .prepare import load_data

    if a.corpus:
        return read_texts(a.corpus)
    cfg = load_config(a.config, [])
    _, df, report = load_data(cfg)
    return documents_of(df, report.format) or list(dict.fromkeys(list(df["doc1"]) + list(df["doc2"])))


def _cmd_search(a) -> int:
    from .search import get_index

    corpus = _corpus_for(a)
    for model in a.model:
        print(f"== {model} ({len(corpus)} documents)")
        for hit in get_index(model, corpus).search(a.query, a.k):
            text = hit.text if len(hit.text) <= 110 else hit.text[:107] + "..."
            print(f"{hit.rank:>3}. {hit.score:.4f}  {text}")
    return 0


def _cmd_similarity(a) -> int:
    from .search import similarity

    for model in a.model:
        for text, score in zip(a.texts[1:], similarity(model, a.texts[0], a.texts[1:])):
            print(f"{score:.4f}  [{model}]  {a.texts[0]!r} <-> {text!r}")
    return 0


def add_eval_commands(sub, default_cfg: str) -> None:
    e = sub.add_parser("eval", help="evaluate a model on the config's test split or a file")
    e.add_argument("--model", default="outputs/embedding_model")
    e.add_argument("--config", default=default_cfg)
    e.add_argument("--data", help="evaluate on every row of this file instead of the test split")
    e.add_argument("--baseline", action="store_true", help="also evaluate the config's base model")
    e.add_argument("overrides", nargs="*", metavar="key=value")
    e.set_defaults(fn=_cmd_eval)

    s = sub.add_parser("search", help="top-k documents for a query")
    s.add_argument("query")
    s.add_argument("--model", action="append", help="repeat to compare models", default=None)
    s.add_argument("--corpus", help="file of documents (default: the config's dataset documents)")
    s.add_argument("--config", default=default_cfg)
    s.add_argument("-k", type=positive_int, default=5)
    s.set_defaults(fn=_cmd_search)

    si = sub.add_parser("similarity", help="cosine similarity of the first text to the others")
    si.add_argument("texts", nargs="+")
    si.add_argument("--model", action="append", default=None)
    si.set_defaults(fn=_cmd_similarity)

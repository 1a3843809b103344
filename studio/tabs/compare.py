"""Compare tab: any two models side by side — similarity playground, search with rank changes and gold marks,
and the test split's metrics plus the queries that improved and got worse most. The logic is `core.retrieval.compare`;
the two stable endpoints are `compare_similarity` and `compare_search`."""

from __future__ import annotations

import shutil
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import gradio as gr
import pandas as pd

from core.data.validate import read_texts
from core.errors import user_message
from core.retrieval import compare as cmp
from core.retrieval.negatives import effective_config
from studio import errors
from studio.files import hide_paths, sanitise_name, upload_dir, upload_limit_mb, upload_problem
from studio.model_picker import model_pair
from studio.run_view import data_line
from studio.style import nothing_yet

MISSING = "train a model first or pick a model directory"


def _short(text: str, n: int = 160) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def _error(exc: Exception) -> gr.Error:
    return errors.error(exc, "compare tab")


def compare_similarity(text_a: str, text_b_or_lines: str, model_a: str, model_b: str) -> dict[str, Any]:
    """Cosine of text A to each line of text B under both models: {texts, model_a, model_b, delta}."""
    try:
        return cmp.compare_similarity(text_a, text_b_or_lines, model_a, model_b)
    except Exception as exc:
        raise _error(exc) from None


def similarity_table(result: dict[str, Any]) -> pd.DataFrame:
    rows = zip(result["texts"], result["model_a"], result["model_b"], result["delta"], strict=True)
    return pd.DataFrame(
        [
            {"text": _short(t), "model A": round(a, 4), "model B": round(b, 4), "change": f"{d:+.4f}"}
            for t, a, b, d in rows
        ],
        columns=["text", "model A", "model B", "change"],
    )


def corpus_for(
    corpus_file: str | None, config: dict[str, Any] | None, dataset: dict[str, Any] | None
) -> tuple[list[str], cmp.EvalData | None, str]:
    """(corpus, evaluation data for gold marks, where the corpus came from). The uploaded corpus wins."""
    data = None
    try:
        data = cmp.evaluation_data(effective_config(config, dataset))
    except Exception as exc:  # no dataset: an uploaded corpus still works, just without gold marks
        if not corpus_file:
            raise cmp.CompareError(
                f"No corpus: load a dataset (Data tab) or upload a corpus file. ({user_message(exc)})"
            ) from None
    if corpus_file:
        return read_texts(corpus_file), data, f"uploaded corpus {Path(corpus_file).name}"
    assert data is not None
    return data.corpus, data, f"the documents of {Path(data.path).name}"


def compare_search(
    query: str,
    k: float,
    model_a: str,
    model_b: str,
    corpus_file: str | None = None,
    config: dict[str, Any] | None = None,
    dataset: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Top-k under each model: {model_a: [{rank, score, text, gold, other_rank, change}], model_b: [...], ...}."""
    try:
        corpus, data, source = corpus_for(corpus_file, config, dataset)
        gold = data.gold_for(query.strip()) if data and query else set()
        cache = (config or {}).get("cache_dir")
        out = cmp.search_both(
            query, int(k or 10), model_a, model_b, corpus, gold, cache, prompts=(config or {}).get("prompts")
        )
    except Exception as exc:
        raise _error(exc) from None
    out["split"] = data.split_of(query.strip()) if data else None
    out["corpus"] = {"source": source, "size": len(corpus)}
    return out


def search_tables(result: dict[str, Any]) -> tuple[pd.DataFrame, pd.DataFrame, str]:
    cols = ["rank", "moved", "score", "gold", "text"]

    def side(hits: list[dict[str, Any]]) -> pd.DataFrame:
        return pd.DataFrame(
            [
                {
                    "rank": h["rank"],
                    "moved": f"{h['change']} (was {h['other_rank']})" if h["change"] != "=" else "=",
                    "score": h["score"],
                    "gold": "★ gold" if h["gold"] else "",
                    "text": _short(h["text"], 300),
                }
                for h in hits
            ],
            columns=cols,
        )

    split = result.get("split")
    where = {
        "test": "a **test-split** query: ★ marks its gold document",
        "train": "a **training** query (seen in training, no gold marks)",
    }.get(split or "", "not a dataset query (no gold marks)")
    g = result.get("gold_rank") or {}
    ranks = f" · gold rank A {g.get('model_a')} → B {g.get('model_b')}" if split == "test" else ""
    c = result.get("corpus") or {}
    return (
        side(result["model_a"]),
        side(result["model_b"]),
        (
            f"Searched {c.get('size', '?')} documents ({c.get('source', '?')}); {where}{ranks}. "
            "'moved' is the change against the other model's rank (▲ = ranked higher here)."
        ),
    )


def test_summary(
    model_a: str, model_b: str, n: int, config: dict[str, Any] | None, dataset: dict[str, Any] | None
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, str]:
    """(metrics A vs B, most improved, most worsened, a line) on the current dataset's test split."""
    cfg = effective_config(config, dataset)
    data = cmp.evaluation_data(cfg)
    changes = cmp.gold_rank_changes(
        model_a, model_b, data.test, data.fmt, data.corpus, cfg.cache_dir, prompts=cfg.prompts.model_dump()
    )
    metrics = cmp.metrics_frame(changes, data.fmt, cfg.evaluation.metrics)
    up, down = cmp.improved_and_worsened(changes, int(n))
    if data.fmt == "scored":
        cols = ["doc1", "doc2", "label", "score_a", "score_b", "change"]
        what = "|cosine − label| error; change = error A − error B"
    else:
        cols = ["query", "rank_a", "rank_b", "change", "gold_b"]
        what = f"best gold rank among {changes.attrs.get('corpus_size', '?')} documents; change = rank A − rank B"
    view = [d[cols].rename(columns={"gold_b": "gold"}) for d in (up, down)]
    for d in view:
        for c in d.columns:
            if d[c].dtype == object:
                d[c] = d[c].map(lambda t: _short(str(t), 120))
    line = (
        f"{len(changes)} test {'pairs' if data.fmt == 'scored' else 'queries'} of {Path(data.path).name}: "
        f"{int((changes['change'] > 0).sum())} improved, {int((changes['change'] < 0).sum())} got worse, "
        f"{int((changes['change'] == 0).sum())} unchanged ({what})."
    )
    return metrics, view[0], view[1], line


def compare_line(dataset: dict | None, config: dict | None, a: str | None, b: str | None) -> str:
    """Which data (the queries and the default corpus) and which two models this tab compares."""
    return data_line(dataset, config, model=f"{a}` vs `{b}")


def create_compare_tab(ctx: Any) -> dict[str, Any]:
    ui = _models_layout(ctx)
    _similarity_layout(ui)
    _search_layout(ui, upload_limit_mb(ctx))
    _test_split_layout(ui)
    _wire_similarity(ctx, ui)
    _wire_corpus(ctx, ui)
    _wire_search(ctx, ui)
    _wire_test_split(ctx, ui)
    return {
        "compare_model_a": ui.model_a,
        "compare_model_b": ui.model_b,
        "compare_similarity_json": ui.sim_json,
        "compare_search_json": ui.search_json,
        "compare_test_queries": ui.picks,
        "compare_text_a": ui.text_a,
        "compare_text_b": ui.text_b,
        "compare_query": ui.query,
        "compare_corpus_file": ui.corpus_file,
    }


def _models_layout(ctx: Any) -> SimpleNamespace:
    """The two models and the line saying which data and models are compared (kept current)."""
    cfg0 = ctx.config.value if isinstance(ctx.config.value, dict) else {}
    model_a, model_b = model_pair(ctx, follow_run=True, scale=3)
    info = gr.Markdown(hide_paths(compare_line(ctx.dataset.value, cfg0, model_a.value, model_b.value), ctx.public))

    def line(dataset: dict | None, config: dict | None, a: str | None, b: str | None) -> str:
        return hide_paths(compare_line(dataset, config, a, b), ctx.public)

    gr.on(
        [ctx.dataset.change, ctx.config.change, model_a.change, model_b.change],
        line,
        [ctx.dataset, ctx.config, model_a, model_b],
        [info],
        api_visibility="private",
        show_progress="hidden",
    )
    return SimpleNamespace(model_a=model_a, model_b=model_b)


def _similarity_layout(ui: SimpleNamespace) -> None:
    with gr.Tab("Similarity"):
        with gr.Row():
            ui.text_a = gr.Textbox(label="Text A", lines=3, value="How do I reset my password?")
            ui.text_b = gr.Textbox(
                label="Text B (or several, one per line)",
                lines=3,
                value="Steps to change a forgotten login password\nThe printer on floor 2 is jammed",
            )
        ui.sim_btn = gr.Button("Compare similarity", variant="primary")
        ui.sim_line = gr.Markdown()  # what went wrong, or what the models did not read: stays on the panel
        ui.sim_table = gr.Dataframe(label="Cosine similarity", interactive=False)
        nothing_yet(ui.sim_table, "Nothing compared yet: enter two texts and press Compare similarity.")
        with gr.Accordion("JSON", open=False):
            ui.sim_json = gr.JSON()


def _search_layout(ui: SimpleNamespace, limit_mb: float) -> None:
    with gr.Tab("Search"):
        ui.corpus_file = gr.State(None)
        with gr.Row():
            ui.upload = gr.File(
                label=f"Corpus file (optional; default: the dataset's documents; max {limit_mb:g} MB)",
                scale=2,
                file_types=[".txt", ".jsonl", ".json", ".csv", ".tsv", ".parquet"],
            )
            ui.corpus_line = gr.Markdown("Corpus: the dataset's documents.")
        with gr.Row():
            ui.picks = gr.Dropdown([], label="Test-split queries (pick one)", allow_custom_value=True, scale=2)
            ui.query = gr.Textbox(label="Query", scale=3)
            ui.k = gr.Slider(1, 50, value=10, step=1, label="k", scale=1)
        ui.search_btn = gr.Button("Search with both models", variant="primary")
        ui.search_line = gr.Markdown()
        with gr.Row():
            # rank, moved, score, gold, text: the text gets the room
            widths = ["9%", "15%", "11%", "10%", "55%"]
            ui.hits_a = gr.Dataframe(label="Model A", interactive=False, wrap=True, column_widths=widths)
            nothing_yet(ui.hits_a, "Model A: nothing searched yet.")
            ui.hits_b = gr.Dataframe(label="Model B", interactive=False, wrap=True, column_widths=widths)
            nothing_yet(ui.hits_b, "Model B: nothing searched yet.")
        with gr.Accordion("JSON", open=False):
            ui.search_json = gr.JSON()


def _test_split_layout(ui: SimpleNamespace) -> None:
    with gr.Tab("Test split"):
        with gr.Row():
            ui.n = gr.Slider(3, 50, value=10, step=1, label="Queries to list")
            ui.sum_btn = gr.Button("Compare on the test split", variant="primary")
        ui.sum_line = gr.Markdown()
        ui.metrics = gr.Dataframe(label="Metrics (model A → model B)", interactive=False)
        nothing_yet(ui.metrics, "No metrics yet: press Compare on the test split.")
        ui.improved = gr.Dataframe(label="Improved most", interactive=False, wrap=True)
        nothing_yet(ui.improved, "Improved most: nothing yet.")
        ui.worsened = gr.Dataframe(label="Got worse most", interactive=False, wrap=True)
        nothing_yet(ui.worsened, "Got worse most: nothing yet.")


def _checked(
    ctx: Any,
    request: gr.Request,
    config: dict[str, Any] | None,
    dataset: dict[str, Any] | None,
    *models: tuple[str, str],
) -> tuple[list[str], dict[str, Any] | None]:
    """(models, config) as this visitor may use them: in public mode models and the config's paths are
    confined (PathRefused names the key otherwise)."""
    v = ctx.visitor(request)
    names = [v.model(name, key) for name, key in models]
    if v.public:
        try:
            cfg = effective_config(config, dataset)
        except Exception:  # no valid dataset: an uploaded corpus still works
            return names, None
        if config is None or not cfg.dataset_path:  # nothing of theirs to read (the similarity playground)
            return names, None
        return names, v.config(cfg).to_dict()
    return names, config


def _wire_similarity(ctx: Any, ui: SimpleNamespace) -> None:
    """The similarity playground and its `compare_similarity` endpoint."""

    def on_similarity(
        text_a: str, text_b_or_lines: str, model_a: str, model_b: str, request: gr.Request
    ) -> dict[str, Any]:
        """Cosine of text A to each line of text B under both models: {texts, model_a, model_b, delta}."""
        try:
            (a, b), _ = _checked(ctx, request, None, None, (model_a, "model A"), (model_b, "model B"))
            with ctx.heavy(request):
                return compare_similarity(text_a, text_b_or_lines, a, b)
        except gr.Error:
            raise
        except Exception as exc:
            raise _error(exc) from None

    def on_similarity_page(text_a: str, text_b: str, model_a: str, model_b: str, request: gr.Request) -> dict:
        """The page's button: the result, or the refusal written on the panel (a toast alone vanishes)."""
        try:
            result = on_similarity(text_a, text_b, model_a, model_b, request)
            (a, b), _ = _checked(ctx, request, None, None, (model_a, "model A"), (model_b, "model B"))
            notes = cmp.unread_notes(text_a, text_b, [a, b])
        except gr.Error as exc:
            return {ui.sim_json: None, ui.sim_table: None, ui.sim_line: f"⚠️ {hide_paths(exc.message, ctx.public)}"}
        line = "\n\n".join(f"ℹ️ {n}" for n in notes)
        return {ui.sim_json: result, ui.sim_table: similarity_table(result), ui.sim_line: line}

    gr.on(
        [ui.sim_btn.click, ui.text_a.submit],
        on_similarity_page,
        [ui.text_a, ui.text_b, ui.model_a, ui.model_b],
        [ui.sim_json, ui.sim_table, ui.sim_line],
        api_visibility="private",
    )
    with gr.Column(visible=False):  # the endpoint for scripts: errors as gr.Error, as before
        api_btn, api_out = gr.Button(), gr.JSON()
    api_btn.click(on_similarity, [ui.text_a, ui.text_b, ui.model_a, ui.model_b], api_out, api_name="compare_similarity")


def _wire_corpus(ctx: Any, ui: SimpleNamespace) -> None:
    """The optional corpus to search: checked and copied into the visitor's folder."""

    def on_upload(path: str | None, request: gr.Request):
        if not path:
            return None, "Corpus: the dataset's documents."
        v = ctx.visitor(request)
        try:
            problem = upload_problem(ctx, v, path)
            if problem:
                raise cmp.CompareError(problem)
            texts = read_texts(path)
            if v.public and len(texts) > ctx.limits.corpus_docs:
                raise cmp.CompareError(
                    f"{len(texts):,} documents: this server takes at most {ctx.limits.corpus_docs:,} per corpus."
                )
        except Exception as exc:
            gr.Warning(user_message(exc))
            return None, f"⚠️ {user_message(exc)} Using the dataset's documents."
        # Gradio's upload cache is temporary; the visitor's copy survives for the session's later searches.
        dest = upload_dir(v, "compare") / sanitise_name(Path(path).name)
        shutil.copy(path, dest)
        return str(dest), f"Corpus: {len(texts)} documents from {dest.name}."

    ui.upload.change(on_upload, ui.upload, [ui.corpus_file, ui.corpus_line], api_visibility="private")


def _wire_search(ctx: Any, ui: SimpleNamespace) -> None:
    """Search with both models: the test-split query picker and `compare_search`."""

    def on_data(config, dataset):
        try:
            data = cmp.evaluation_data(effective_config(config, dataset))
            qs = [] if data.fmt == "scored" else list(dict.fromkeys(data.test["query"]))
        except Exception:  # no valid dataset yet: the picker is just empty
            qs = []
        return gr.update(choices=qs, value=None)

    def on_search(
        query: str,
        k: float,
        model_a: str,
        model_b: str,
        corpus_file: str | None,
        config: dict[str, Any] | None,
        dataset: dict[str, Any] | None,
        request: gr.Request,
    ):
        """Top-k under each model: {model_a: [{rank, score, text, gold, other_rank, change}], model_b: [...]}."""
        try:
            (a, b), cfg = _checked(ctx, request, config, dataset, (model_a, "model A"), (model_b, "model B"))
            with ctx.heavy(request):
                return compare_search(query, k, a, b, corpus_file, cfg, None if cfg is not config else dataset)
        except gr.Error:
            raise
        except Exception as exc:
            raise _error(exc) from None

    hidden = {"api_visibility": "private"}
    gr.on([ctx.config.change, ctx.dataset.change], on_data, [ctx.config, ctx.dataset], ui.picks, **hidden)
    ui.picks.input(lambda q: q or gr.skip(), ui.picks, ui.query, **hidden)

    def on_search_page(
        query: str,
        k: float,
        model_a: str,
        model_b: str,
        corpus_file: str | None,
        config: Any,
        dataset: Any,
        request: gr.Request,
    ) -> dict:
        """The page's button: both hit lists, or the refusal written on the panel."""
        try:
            result = on_search(query, k, model_a, model_b, corpus_file, config, dataset, request)
        except gr.Error as exc:
            empty = {ui.search_json: None, ui.hits_a: None, ui.hits_b: None}
            return empty | {ui.search_line: f"⚠️ {hide_paths(exc.message, ctx.public)}"}
        hits_a, hits_b, line = search_tables(result)
        return {ui.search_json: result, ui.hits_a: hits_a, ui.hits_b: hits_b, ui.search_line: line}

    inputs = [ui.query, ui.k, ui.model_a, ui.model_b, ui.corpus_file, ctx.config, ctx.dataset]
    gr.on(
        [ui.search_btn.click, ui.query.submit],
        on_search_page,
        inputs,
        [ui.search_json, ui.hits_a, ui.hits_b, ui.search_line],
        **hidden,
    )
    with gr.Column(visible=False):  # the endpoint for scripts: errors as gr.Error, as before
        api_btn, api_out = gr.Button(), gr.JSON()
    api_btn.click(on_search, inputs, api_out, api_name="compare_search")


def _wire_test_split(ctx: Any, ui: SimpleNamespace) -> None:
    """Both models on the test split: metrics and the queries that improved and got worse most."""

    def on_summary(model_a, model_b, n, config, dataset, request: gr.Request, progress: gr.Progress = gr.Progress()):  # noqa: B008
        progress(0.1, desc="Encoding the test split and corpus with both models")
        try:
            (a, b), cfg = _checked(ctx, request, config, dataset, (model_a, "model A"), (model_b, "model B"))
            with ctx.heavy(request):
                return test_summary(a, b, n, cfg, None if cfg is not config else dataset)
        except Exception as exc:
            msg = hide_paths(user_message(exc), ctx.public)
            return {ui.sum_line: f"⚠️ {msg}"}  # on the panel, where it stays (no toast: it would say it twice)

    ui.sum_btn.click(
        on_summary,
        [ui.model_a, ui.model_b, ui.n, ctx.config, ctx.dataset],
        [ui.metrics, ui.improved, ui.worsened, ui.sum_line],
        api_name="compare_summary",
    )

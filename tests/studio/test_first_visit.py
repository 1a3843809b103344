"""Issue 24's handlers without a browser: the visitor's saved state (written, read back, checked again), paths as a
public visitor sees them, pickers that offer only usable models, the evaluation chart's defaults, and the words a bad
file or a pasted book gets. Real files, the real bundled model, a real public visitor's folder."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from core.config.limits import Limits
from core.config.schema import EmbedConfig
from core.data.validate import validate_file
from core.public.sandbox import Sandbox
from core.public.visitors import Visitors
from studio.context import Visitor
from studio.datasets import DEFAULT_SAMPLE
from studio.files import ROOT, hide_paths, shown_path
from studio.model_picker import choices
from studio.plots import metrics_figure
from studio.saved_state import STATE_FILE, read_state, restore, snapshot, write_state

BUNDLED = "sentence-transformers/all-MiniLM-L6-v2"


@pytest.fixture
def visitor(tmp_path: Path) -> Visitor:
    visitors = Visitors(tmp_path / "workspace")
    root = visitors.folder(visitors.issue())
    root.mkdir(parents=True)  # a visitor folder exists once its visitor first writes (here: as at work)
    return Visitor("v", root, root / "runs", root / "uploads", Sandbox(root), Limits())


def pairs_file(folder: Path, name: str = "claims.csv", rows: int = 12) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    lines = ["query,document"] + [f"question {i} about windows,answer {i} about glass" for i in range(rows)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_saved_state_round_trip_and_what_no_longer_holds_is_dropped(visitor: Visitor) -> None:
    data = pairs_file(visitor.root / "uploads")
    cfg = EmbedConfig(dataset_path=str(data), num_epochs=2).to_dict()
    write_state(visitor, snapshot({"path": str(data), "format": "pairs"}, cfg, {"compare_text_a": "x" * 50_000}))
    saved = read_state(visitor)
    assert len(saved["inputs"]["compare_text_a"]) == 20_000  # what was typed, capped
    start = {"path": str(DEFAULT_SAMPLE), "format": "pairs"}
    dataset, config, notes = restore(visitor, saved, start, EmbedConfig().to_dict())
    assert Path(dataset["path"]).resolve() == data.resolve() and dataset["origin"] == "restored"
    assert config["num_epochs"] == 2 and not notes

    data.unlink()  # cleared since the last visit: the sample stays, and the page says so
    dataset, config, notes = restore(visitor, saved, start, EmbedConfig().to_dict())
    assert dataset is start and "claims.csv" in notes[0] and "gone" in notes[0]


def test_a_saved_state_is_checked_like_an_edit(visitor: Visitor, tmp_path: Path) -> None:
    """An edited state file pointing outside the visitor's folder is refused, as if typed; garbage is ignored."""
    outside = pairs_file(tmp_path / "server")
    (visitor.root / STATE_FILE).write_text(
        json.dumps({"config": {"dataset_path": str(outside)}, "dataset": {"path": str(outside)}}), "utf-8"
    )
    start = {"path": str(DEFAULT_SAMPLE), "format": "pairs"}
    dataset, config, notes = restore(visitor, read_state(visitor), start, EmbedConfig().to_dict())
    assert dataset is start and str(outside) not in json.dumps(config) and len(notes) == 2
    (visitor.root / STATE_FILE).write_text("{not json", "utf-8")
    assert read_state(visitor) == {}


def test_paths_as_a_public_visitor_sees_them(visitor: Visitor) -> None:
    model = visitor.root / "runs" / "r1" / "model"
    assert shown_path(str(model), visitor) == "runs/r1/model"
    assert shown_path(str(DEFAULT_SAMPLE), visitor) == "assets/samples/it_helpdesk_pairs.jsonl"
    text = f"Zipped {model} → r1.zip; sample {DEFAULT_SAMPLE}; folder {visitor.root}"
    shown = hide_paths(text)
    assert str(visitor.root) not in shown and str(ROOT) not in shown and "visitors/" not in shown
    assert "runs/r1/model" in shown and "your folder" in shown
    assert hide_paths(text, public=False) == text


def test_a_public_picker_offers_only_what_loads_and_says_why_otherwise(visitor: Visitor) -> None:
    cfg = EmbedConfig(output_dir="outputs/embedding_model").to_dict()
    offered = choices(visitor, cfg, "outputs/embedding_model")
    labels = [label for label, _ in offered]
    assert not [label for label in labels if "needs download" in label], labels
    assert ("[not trained yet] outputs/embedding_model", "outputs/embedding_model") in offered
    assert any(value == BUNDLED for _, value in offered)


def test_the_eval_chart_draws_three_metrics_with_one_legend_entry_each() -> None:
    metrics = {m: 0.5 for m in ("accuracy@1", "accuracy@5", "accuracy@10", "map@100", "mrr@10", "ndcg@10", "recall@10")}
    config = {"evaluation": {"metrics": list(metrics)}}
    events = [
        {"type": "run_started", "config": config},
        {"type": "eval", "step": 0, "baseline": True, "metrics": metrics},
        {"type": "train_step", "step": 4, "max_steps": 4, "loss": 0.3},
        {"type": "eval", "step": 4, "final": True, "metrics": metrics},
    ]
    fig = metrics_figure(events)
    legend = [t.name for t in fig.data if t.showlegend is not False]
    drawn = list(dict.fromkeys(t.legendgroup for t in fig.data if t.visible in (None, True)))
    assert len(legend) == 7 and drawn[0] == "ndcg@10" and len(drawn) == 3, (legend, drawn)


def test_bad_files_get_words_to_act_on(tmp_path: Path) -> None:
    latin = tmp_path / "latin.csv"
    latin.write_bytes("query,document\nCafé?,Le café.\n".encode("cp1252"))
    error = str(validate_file(latin).errors[0])
    assert "cp1252" in error and "Save it as UTF-8" in error and "iconv" in error
    huge = tmp_path / "huge.csv"
    huge.write_text("query,document\nq,d\nq2," + "word " * 30_000 + "\n", encoding="utf-8")
    warnings = [str(w) for w in validate_file(huge).warnings]
    assert any("line 3" in w and "over 100,000 characters" in w for w in warnings), warnings


def test_a_pasted_book_says_it_was_not_read_in_full() -> None:
    from core.retrieval.compare import compare_similarity, unread_notes

    book = "policy " * 20_000
    notes = unread_notes(book, "a short text", [BUNDLED])
    assert len(notes) == 1 and "Text A has 140,000 characters" in notes[0] and "first 256 tokens" in notes[0]
    assert unread_notes("short", "also short", [BUNDLED]) == []
    assert len(compare_similarity(book, "a\nb", BUNDLED, BUNDLED)["texts"]) == 2

"""A model zip that carries its document index: the index is checked against the model, unzips to `index/`,
loads with the model folder around it, and the model card's faiss + pandas snippet searches it as written."""

from __future__ import annotations

import contextlib
import io
import json
import re
import shutil
import zipfile

import pytest

from core.config.schema import DEFAULT_MODEL
from core.export import archive as export
from core.models.load import resolve_model
from core.retrieval.doc_index import IndexMismatchError, build_index, load_index
from core.training.model_card import search_section
from tests.rag_helpers import make_documents


@pytest.mark.slow
def test_model_zip_with_index_and_the_cards_snippet(tmp_path):
    model = shutil.copytree(resolve_model(DEFAULT_MODEL), tmp_path / "model")
    docs = make_documents(tmp_path / "docs", bad=False)
    build_index(model, docs, tmp_path / "index", chunk_tokens=30)
    path = export.export_zip(model, tmp_path / "exports", index_dir=tmp_path / "index")
    with zipfile.ZipFile(path) as zf:
        top = export.zip_folder(path)  # one top-level folder named after the model
        assert {f"{top}/index/index.faiss", f"{top}/index/chunks.parquet", f"{top}/index/manifest.json"} <= set(
            zf.namelist()
        )
        zf.extractall(tmp_path / "unzipped")
    shutil.rmtree(model)  # the index must not need the folder it was built from
    unzipped = tmp_path / "unzipped" / top
    assert load_index(unzipped / "index").search("descaling the coffee machine", 1)[0].source == "manual.pdf"

    card = search_section(unzipped.as_posix())
    snippet = re.search(r"```python\n(.*?)```", card, re.S).group(1)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(snippet, {})
    assert out.getvalue().splitlines()[0].split()[1] == "faq.jsonl"  # the password question's document

    manifest = json.loads((tmp_path / "index" / "manifest.json").read_text())
    manifest["model"]["fingerprint"] = "f" * 24
    (tmp_path / "index" / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(IndexMismatchError):
        export.export_zip(unzipped, tmp_path / "exports", index_dir=tmp_path / "index")

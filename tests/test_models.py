from __future__ import annotations

import shutil
import time

import pytest

from core.models.load import ModelError, bundled_model_path, load_model, resolve_model


@pytest.mark.parametrize("name", ["sentence-transformers/all-MiniLM-L6-v2", "all-MiniLM-L6-v2"])
def test_bundled_names_resolve_offline(name):
    path = resolve_model(name)
    assert path == bundled_model_path()


def test_local_directory(tmp_path):
    local = tmp_path / "my-model"
    shutil.copytree(bundled_model_path(), local)
    assert resolve_model(str(local)) == str(local.resolve())
    model = load_model(str(local), max_seq_length=64)
    assert model.max_seq_length == 64
    assert model.encode(["hello"]).shape == (1, 384)


def test_directory_without_a_model(tmp_path):
    with pytest.raises(ModelError, match="holds no model"):
        resolve_model(str(tmp_path))


def test_missing_local_path_is_clear(tmp_path):
    with pytest.raises(ModelError, match="does not exist"):
        resolve_model(str(tmp_path / "nope" / "model"))


@pytest.mark.parametrize("name", ["BAAI/bge-small-en-v1.5", "nomic-ai/nomic-embed-text-v1.5"])
def test_hub_ids_with_dots_are_looked_up_not_taken_for_paths(name, unreachable_hub):
    with pytest.raises(ModelError, match="could not be found. Tried the local Hugging Face cache"):
        resolve_model(name)  # offline in tests: the cache is asked, and the error says how to fix it


def test_unknown_hub_id_offline_is_clear_and_does_not_hang(unreachable_hub):
    t0 = time.time()
    with pytest.raises(ModelError) as e:
        resolve_model("some-org/not-a-cached-model")
    message = str(e.value)
    assert "some-org/not-a-cached-model" in message
    assert "Tried" in message and "local directory" in message
    assert "Traceback" not in message
    assert time.time() - t0 < 30  # a guard against hanging on an unreachable hub, not a speed target

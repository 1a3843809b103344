"""The engine's side of a Hugging Face Space: persistent storage (STUDIO_DATA_DIR, /data, HF_HOME), visitor folders
made on their first write, the bound on new anonymous visitors, anonymous work moved into an account, and the limits
a GPU raises."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from core.config import storage
from core.config.limits import Limits
from core.public.visitors import SEEN_FILE, TooManyNewVisitors, VisitorBusy, Visitors


def test_persistent_storage_holds_workspace_runs_and_the_hub_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for var in ("STUDIO_DATA_DIR", "SPACE_ID", "HF_HOME", "STUDIO_PROBE_CACHE"):
        monkeypatch.delenv(var, raising=False)
    assert storage.data_dir() is None and storage.default_dirs() == (Path("workspace"), Path("runs"))
    monkeypatch.setattr(storage, "SPACE_DATA", tmp_path / "data")  # a Space's /data, when it has one
    (tmp_path / "data").mkdir()
    assert storage.data_dir() is None  # off a Space a /data folder is nobody's persistent storage
    monkeypatch.setenv("SPACE_ID", "someone/studio")
    assert storage.data_dir() == tmp_path / "data"
    assert storage.default_dirs() == (tmp_path / "data" / "workspace", tmp_path / "data" / "runs")
    monkeypatch.setenv("STUDIO_DATA_DIR", str(tmp_path / "elsewhere"))  # the override wins and is created
    assert storage.use_persistent_storage() == tmp_path / "elsewhere" and (tmp_path / "elsewhere").is_dir()
    assert os.environ["HF_HOME"] == str(tmp_path / "elsewhere" / ".huggingface")
    monkeypatch.setenv("HF_HOME", "/operator/choice")
    storage.use_persistent_storage()
    assert os.environ["HF_HOME"] == "/operator/choice"  # a variable set by the operator is never replaced


def test_a_visitor_folder_is_made_on_its_first_write(tmp_path: Path) -> None:
    visitors = Visitors(tmp_path)
    ids = [visitors.issue() for _ in range(200)]  # a flood of sessions costs no inode
    assert [p.name for p in visitors.root.iterdir()] == [".secret"]
    assert all(visitors.check(v) == v for v in ids)
    visitors.touch(ids[0])
    assert not visitors.folder(ids[0]).exists()  # activity alone writes nothing
    (visitors.folder(ids[0]) / "uploads").mkdir(parents=True)
    visitors._touched.clear()
    visitors.touch(ids[0])
    assert (visitors.folder(ids[0]) / SEEN_FILE).exists()


def test_new_anonymous_visitors_per_minute_are_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    visitors = Visitors(tmp_path, new_per_min=3)
    first = [visitors.issue() for _ in range(3)]
    with pytest.raises(TooManyNewVisitors, match="3 new visitors a minute"):
        visitors.issue()
    assert all(visitors.check(v) for v in first)  # those already here keep working
    assert visitors.is_user(visitors.user("someone"))  # signed-in users are not counted
    monkeypatch.setenv("STUDIO_MAX_NEW_VISITORS_PER_MIN", "7")
    assert Limits.from_env().new_visitors_per_min == 7


def test_anonymous_work_merges_into_an_account_without_loss_or_copies(tmp_path: Path) -> None:
    visitors = Visitors(tmp_path)
    anon, user = visitors.issue(), visitors.user("someone")
    src, dst = visitors.folder(anon), visitors.folder(user)
    (src / "runs" / "r1" / "model").mkdir(parents=True)
    (src / "runs" / "r1" / "config.yaml").write_text(f"dataset_path: {src}/uploads/pairs.jsonl\n", "utf-8")
    (src / "runs" / "r1" / "model" / "weights.bin").write_bytes(b"\x00\x01")
    (src / "uploads").mkdir()
    (src / "uploads" / "pairs.jsonl").write_text("anonymous version\n", "utf-8")
    (src / "uploads" / "same.jsonl").write_text("identical\n", "utf-8")
    (dst / "uploads").mkdir(parents=True)
    (dst / "uploads" / "pairs.jsonl").write_text("the account's own version\n", "utf-8")
    (dst / "uploads" / "same.jsonl").write_text("identical\n", "utf-8")
    with pytest.raises(VisitorBusy):
        visitors.merge(anon, user, busy={src / "runs" / "r1"})
    assert (src / "runs" / "r1" / "config.yaml").exists()  # a held run stops the whole move
    assert visitors.merge(anon, user) == 3
    assert not src.exists()
    assert (dst / "uploads" / "pairs.jsonl").read_text("utf-8") == "the account's own version\n"
    assert (dst / "uploads" / "pairs-1.jsonl").read_text("utf-8") == "anonymous version\n"
    assert sorted(p.name for p in (dst / "uploads").iterdir()) == ["pairs-1.jsonl", "pairs.jsonl", "same.jsonl"]
    assert (dst / "runs" / "r1" / "model" / "weights.bin").read_bytes() == b"\x00\x01"
    # the run's config names the renamed upload where it now is
    assert (dst / "runs" / "r1" / "config.yaml").read_text("utf-8") == f"dataset_path: {dst}/uploads/pairs-1.jsonl\n"
    assert visitors.merge(anon, user) == 0  # nothing left to move


def test_a_private_duplicate_can_turn_public_mode_off(monkeypatch: pytest.MonkeyPatch) -> None:
    from core.config.limits import public_mode

    monkeypatch.setenv("SPACE_ID", "me/my-copy")
    monkeypatch.delenv("STUDIO_PUBLIC", raising=False)
    assert public_mode()
    monkeypatch.setenv("STUDIO_PUBLIC", "0")
    assert not public_mode()
    monkeypatch.delenv("SPACE_ID")
    monkeypatch.setenv("STUDIO_PUBLIC", "1")
    assert public_mode()


def test_a_gpu_raises_the_limits_that_exist_for_cpu_speed(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in Limits.ENV.values():
        monkeypatch.delenv(var, raising=False)
    cpu, gpu = Limits.from_env(), Limits.from_env(gpu=True)
    assert (gpu.num_epochs, gpu.train_minutes, gpu.dataset_rows) > (cpu.num_epochs, cpu.train_minutes, cpu.dataset_rows)
    assert gpu.corpus_docs > cpu.corpus_docs and gpu.mine_rows > cpu.mine_rows
    assert (gpu.upload_mb, gpu.visitor_disk_mb, gpu.batch_size) == (cpu.upload_mb, cpu.visitor_disk_mb, cpu.batch_size)
    monkeypatch.setenv("STUDIO_MAX_EPOCHS", "4")
    assert Limits.from_env(gpu=True).num_epochs == 4  # each is still its variable

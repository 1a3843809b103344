"""Getting a model out: a zip with one top-level folder (optionally with its document index) and a push to the
Hugging Face hub that fails fast and readably when it cannot work — the logic behind the studio's Export tab."""

from __future__ import annotations

import os
import socket
import threading
import zipfile
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from core.models.load import hub_offline, is_model_dir
from core.retrieval.compare import CompareError
from core.retrieval.doc_index import check_index_model

HUB_TIMEOUT_S = 8.0  # a push that has not even reached the hub by then is reported as unreachable, not waited on


def read_model_card(model_dir: str | Path | None) -> str:
    path = Path(model_dir or "") / "README.md"
    return path.read_text(encoding="utf-8") if model_dir and path.is_file() else ""


def export_zip(
    model_dir: str | Path, dest_dir: str | Path, name: str | None = None, index_dir: str | Path | None = None
) -> Path:
    """Zip a model folder under one top-level folder named after the model, so unzipping gives that one folder
    (which SentenceTransformer loads), never a spill of files into the current directory; with a document index
    built by this model under `<folder>/index/` when `index_dir` is given."""
    model_dir = Path(model_dir)
    if not is_model_dir(model_dir):
        raise CompareError(f"No model at '{model_dir}': train a model first or pick a model directory.")
    if index_dir:
        check_index_model(index_dir, model_dir)
    dest_dir = Path(dest_dir)
    dest_dir.mkdir(parents=True, exist_ok=True)
    stem = name or (model_dir.parent.name if model_dir.name == "model" else model_dir.name)
    target = dest_dir / f"{stem}.zip"
    tmp = target.with_suffix(".zip.tmp")
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf:  # weights barely compress
        for f in sorted(model_dir.rglob("*")):
            if f.is_file():
                zf.write(f, f"{stem}/{f.relative_to(model_dir).as_posix()}")
        for f in sorted(Path(index_dir).iterdir()) if index_dir else []:
            if f.is_file():
                zf.write(f, f"{stem}/index/{f.name}")
    tmp.replace(target)
    return target


def zip_tree(folder: str | Path, target: str | Path) -> Path:
    """Zip any folder (an ONNX copy, say) under one top-level folder of its name; written beside and renamed, so a
    half-written zip is never served."""
    folder, target = Path(folder), Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(".zip.tmp")
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        for f in sorted(folder.rglob("*")):
            if f.is_file():
                zf.write(f, f"{folder.name}/{f.relative_to(folder).as_posix()}")
    tmp.replace(target)
    return target


def zip_folder(path: str | Path) -> str:
    """The one top-level folder of a zip written by export_zip."""
    with zipfile.ZipFile(path) as zf:
        return zf.namelist()[0].split("/")[0] if zf.namelist() else ""


class HubError(RuntimeError):
    """A push that could not be done; the message says why and what to try."""


def _reachable(endpoint: str, timeout: float) -> str | None:
    """None when the hub's host answers a TCP connect, else the reason. Skipped behind a proxy (it decides)."""
    if any(os.environ.get(v) for v in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")):
        return None
    url = urlparse(endpoint)
    try:
        socket.create_connection(
            (url.hostname, url.port or (443 if url.scheme == "https" else 80)), timeout=timeout
        ).close()
        return None
    except OSError as exc:
        return f"{type(exc).__name__}: {exc}"


def push_to_hub(
    model_dir: str | Path, repo_id: str, token: str, private: bool = True, timeout_s: float = HUB_TIMEOUT_S
) -> str:
    """Create `repo_id` (if needed) and upload the model folder. Returns the repo URL; raises HubError fast and
    with a readable message when the input is wrong or the hub cannot be reached."""
    import re

    from huggingface_hub import HfApi, constants

    repo_id, token = (repo_id or "").strip(), (token or "").strip()
    if not token:
        raise HubError("Give a Hugging Face access token with write permission (huggingface.co/settings/tokens).")
    if not re.fullmatch(r"[A-Za-z0-9][\w.-]*/[\w.-]+", repo_id):
        raise HubError(f"Repo id {repo_id!r} is not of the form 'user-or-org/model-name'.")
    if not is_model_dir(model_dir):
        raise HubError(f"No model at '{model_dir}': train a model first or pick a model directory.")
    if hub_offline():
        raise HubError("HF_HUB_OFFLINE is set, so nothing was pushed. Unset it on a machine with internet access.")
    why = _reachable(constants.ENDPOINT, min(5.0, timeout_s))
    if why:
        raise HubError(
            f"Cannot reach {constants.ENDPOINT} ({why}): this machine looks offline, so nothing was "
            "pushed. Download the zip instead and upload it from a machine with internet access."
        )
    box: dict[str, Any] = {}

    def work() -> None:
        try:
            api = HfApi(token=token)
            box["url"] = str(api.create_repo(repo_id, private=private, exist_ok=True))
            api.upload_folder(
                repo_id=repo_id, folder_path=str(model_dir), commit_message="Upload from embedding-studio"
            )
        except Exception as exc:  # reported below with its first line: enough to act on
            box["error"] = exc

    worker = threading.Thread(target=work, daemon=True, name="hub-push")
    worker.start()
    # Creating the repo must answer quickly; the upload itself may take long for big models.
    worker.join(timeout_s)
    if worker.is_alive() and "url" not in box:
        raise HubError(f"The hub did not answer within {timeout_s:.0f} s; nothing was pushed. Check the connection.")
    worker.join()
    if "error" in box:
        exc = box["error"]
        first = (str(exc).splitlines() or [""])[0][:300]
        hint = " Check that the token has write access." if "401" in first or "403" in first else ""
        raise HubError(f"Push to {repo_id} failed: {type(exc).__name__}: {first}.{hint}")
    return box.get("url") or f"{constants.ENDPOINT}/{repo_id}"

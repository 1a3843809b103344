"""Visitors of a public studio: unguessable ids the server makes, one folder each, deleted after a while.

An id is `<token>.<signature>`: 192 random bits and an HMAC of them under a server secret, so an id coming back
from a browser can be checked (format, signature, folder) before any folder name is derived from it; a forged or
edited id is simply not a visitor. The folder is named by the token alone. Nothing client-chosen (a session hash,
a file name) ever names a folder here.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
import shutil
import time
from pathlib import Path

ID_RE = re.compile(r"[A-Za-z0-9_-]{32}\.[0-9a-f]{32}")
SEEN_FILE = ".last_seen"
TOUCH_EVERY_S = 60  # a visitor's activity is recorded at most this often (one tiny write)


class Visitors:
    """The registry of one studio's visitors, under `<workspace>/visitors/`."""

    def __init__(self, workspace: str | Path):
        self.root = Path(workspace).resolve() / "visitors"
        self.root.mkdir(parents=True, exist_ok=True)
        self._secret = self._load_secret()
        self._touched: dict[str, float] = {}

    def _load_secret(self) -> bytes:
        """STUDIO_SECRET, else a random secret kept beside the folders so ids survive a restart."""
        env = os.environ.get("STUDIO_SECRET")
        if env:
            return env.encode()
        path = self.root / ".secret"
        if not path.exists():
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(secrets.token_hex(32))
        return path.read_text().strip().encode()

    def _sign(self, token: str) -> str:
        return hmac.new(self._secret, token.encode(), hashlib.sha256).hexdigest()[:32]

    def issue(self) -> str:
        """A new visitor id (and its folder)."""
        token = secrets.token_urlsafe(24)  # 32 characters, 192 bits
        folder = self.root / token
        folder.mkdir(parents=True, exist_ok=False)
        (folder / SEEN_FILE).touch()
        return f"{token}.{self._sign(token)}"

    def check(self, visitor_id: object) -> str | None:
        """The id when this server issued it and its folder still exists, else None."""
        if not isinstance(visitor_id, str) or not ID_RE.fullmatch(visitor_id):
            return None
        token, sig = visitor_id.split(".")
        if not hmac.compare_digest(sig, self._sign(token)) or not (self.root / token).is_dir():
            return None
        return visitor_id

    def folder(self, visitor_id: str) -> Path:
        """The folder of a checked id. Raises ValueError for anything else."""
        if self.check(visitor_id) is None:
            raise ValueError("not a visitor of this studio")
        return self.root / visitor_id.split(".")[0]

    def touch(self, visitor_id: str) -> None:
        now = time.time()
        if now - self._touched.get(visitor_id, 0) >= TOUCH_EVERY_S:
            self._touched[visitor_id] = now
            try:
                (self.folder(visitor_id) / SEEN_FILE).touch()
            except (OSError, ValueError):
                pass

    def sweep(self, ttl_s: float, busy: set[Path] | None = None) -> list[Path]:
        """Delete the folders of visitors not seen for `ttl_s` seconds, except those with a live or queued run."""
        busy = {p.resolve() for p in busy or set()}
        removed = []
        for folder in self.root.iterdir():
            if not folder.is_dir() or any(b.is_relative_to(folder.resolve()) for b in busy):
                continue
            seen = folder / SEEN_FILE
            last = seen.stat().st_mtime if seen.exists() else folder.stat().st_mtime
            if time.time() - last > ttl_s:
                shutil.rmtree(folder, ignore_errors=True)
                removed.append(folder)
        gone = {f.name for f in removed}
        self._touched = {vid: t for vid, t in self._touched.items() if vid.split(".")[0] not in gone}
        return removed


def disk_usage(folder: str | Path) -> int:
    """Bytes under `folder` (symlinks are not followed: they are not the visitor's bytes)."""
    total = 0
    for dirpath, _, files in os.walk(folder):
        for name in files:
            try:
                total += os.lstat(os.path.join(dirpath, name)).st_size
            except OSError:
                pass
    return total

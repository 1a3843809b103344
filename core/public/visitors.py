"""Visitors of a public studio: unguessable ids the server makes, one folder each, deleted after a while.

An anonymous id is `<token>.<signature>`: 192 random bits and an HMAC of them under a server secret, so an id coming
back from a browser can be checked (format, signature) before any folder name is derived from it; a forged or edited
id is simply not a visitor. A signed-in Hugging Face user's id is `@<token>.<signature>`, the token an HMAC of their
user name under the same secret: the same name finds the same folder from any browser, and the name itself never
names a folder. User ids never leave the server (a browser keeps its anonymous id only). The folder is named by the
token alone and is made on the first write, so a flood of sessions costs no inodes. Nothing client-chosen (a session
hash, a file name) ever names a folder here.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
import shutil
import threading
import time
from collections import deque
from pathlib import Path

ID_RE = re.compile(r"[A-Za-z0-9_-]{32}\.[0-9a-f]{32}")
USER_RE = re.compile(r"@[0-9a-f]{32}\.[0-9a-f]{32}")
SEEN_FILE = ".last_seen"
STATE_FILE = "studio_state.json"  # the page's saved state (what was selected and typed), kept by the studio
TOUCH_EVERY_S = 60  # a visitor's activity is recorded at most this often (one tiny write)
REWRITE_SUFFIXES = {".json", ".jsonl", ".yaml", ".yml", ".txt", ".md"}  # run files that record absolute paths
REWRITE_MAX_BYTES = 20_000_000


class TooManyNewVisitors(RuntimeError):
    """More new anonymous visitors this minute than the server admits; existing visitors are unaffected."""


class VisitorBusy(RuntimeError):
    """A folder cannot be moved while one of its trainings runs or waits."""


class Visitors:
    """The registry of one studio's visitors, under `<workspace>/visitors/`.

    `new_per_min` bounds new anonymous ids per minute, server-wide (STUDIO_MAX_NEW_VISITORS_PER_MIN): a script
    opening sessions in a loop is refused with a message, while visitors who already have an id are never affected.
    """

    def __init__(self, workspace: str | Path, new_per_min: float | None = None):
        self.root = Path(workspace).resolve() / "visitors"
        self.root.mkdir(parents=True, exist_ok=True)
        self._secret = self._load_secret()
        self._touched: dict[str, float] = {}
        self.new_per_min = new_per_min
        self._issued: deque[float] = deque()
        self._lock = threading.Lock()

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

    def _sign(self, token: str, kind: str = "") -> str:
        return hmac.new(self._secret, (kind + token).encode(), hashlib.sha256).hexdigest()[:32]

    def _admit(self) -> None:
        """Count one new anonymous visitor against this minute's allowance (a sliding window)."""
        if not self.new_per_min:
            return
        now = time.monotonic()
        with self._lock:
            while self._issued and now - self._issued[0] > 60:
                self._issued.popleft()
            if len(self._issued) >= self.new_per_min:
                raise TooManyNewVisitors(
                    f"This studio is welcoming more than {self.new_per_min:g} new visitors a minute right now; "
                    "try again in a minute. (Visitors already here are not affected.)"
                )
            self._issued.append(now)

    def issue(self) -> str:
        """A new anonymous visitor id. Its folder is made when it first writes (see `folder`)."""
        self._admit()
        token = secrets.token_urlsafe(24)  # 32 characters, 192 bits
        return f"{token}.{self._sign(token)}"

    def user(self, username: str) -> str:
        """The id of a signed-in Hugging Face user: HMAC(server secret, user name). Hub user names are unique
        regardless of case, so the name is compared lower-cased."""
        name = (username or "").strip().lower()
        if not name:
            raise ValueError("no user name")
        token = hmac.new(self._secret, b"hf-user:" + name.encode(), hashlib.sha256).hexdigest()[:32]
        return f"@{token}.{self._sign(token, 'user:')}"

    def check(self, visitor_id: object) -> str | None:
        """The id when it is an anonymous id this server issued, else None (what a browser may hand back)."""
        if not isinstance(visitor_id, str) or not ID_RE.fullmatch(visitor_id):
            return None
        token, sig = visitor_id.split(".")
        return visitor_id if hmac.compare_digest(sig, self._sign(token)) else None

    def is_user(self, visitor_id: object) -> bool:
        """Whether this is a signed-in user's id made by this server."""
        if not isinstance(visitor_id, str) or not USER_RE.fullmatch(visitor_id):
            return False
        token, sig = visitor_id[1:].split(".")
        return hmac.compare_digest(sig, self._sign(token, "user:"))

    def valid(self, visitor_id: object) -> bool:
        return self.check(visitor_id) is not None or self.is_user(visitor_id)

    def folder(self, visitor_id: str) -> Path:
        """The folder of a checked id (it may not exist yet). Raises ValueError for anything else."""
        if not self.valid(visitor_id):
            raise ValueError("not a visitor of this studio")
        return self.root / visitor_id.lstrip("@").split(".")[0]

    def touch(self, visitor_id: str) -> None:
        """Record activity in a folder that exists (one that does not yet has nothing to keep)."""
        now = time.time()
        if now - self._touched.get(visitor_id, 0) >= TOUCH_EVERY_S:
            self._touched[visitor_id] = now
            try:
                folder = self.folder(visitor_id)
                if folder.is_dir():
                    (folder / SEEN_FILE).touch()
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
        self._touched = {vid: t for vid, t in self._touched.items() if vid.lstrip("@").split(".")[0] not in gone}
        return removed

    def merge(self, from_id: str, to_id: str, busy: set[Path] | None = None) -> int:
        """Move everything in `from_id`'s folder into `to_id`'s (an anonymous visitor who signed in): files are
        moved, not copied; a file whose name is taken by a different file is kept under a new name, an identical
        one is dropped (nothing lost, nothing twice); absolute paths recorded in the moved run files, configs and
        manifests are rewritten to the new place. Returns the number of files moved. Raises VisitorBusy while a
        training of `from_id` runs or waits (its process writes by path). No library merges folders this way."""
        src, dst = self.folder(from_id).resolve(), self.folder(to_id).resolve()
        if src == dst or not src.is_dir():
            return 0
        if any(Path(b).resolve().is_relative_to(src) for b in busy or set()):
            raise VisitorBusy("a training started before you signed in is still running or queued")
        dst.mkdir(parents=True, exist_ok=True)
        renamed: list[tuple[str, str]] = []
        moved: list[Path] = []
        for entry in sorted(src.iterdir()):
            if entry.name != SEEN_FILE:
                _merge_into(entry, dst / entry.name, renamed, moved)
        for path in moved:
            _rewrite_paths(path, [*sorted(renamed, key=lambda r: -len(r[0])), (str(src), str(dst))])
        shutil.rmtree(src, ignore_errors=True)
        (dst / SEEN_FILE).touch()
        return len(moved)


def _same_file(a: Path, b: Path) -> bool:
    if a.stat().st_size != b.stat().st_size:
        return False
    with a.open("rb") as fa, b.open("rb") as fb:
        while True:
            ca, cb = fa.read(1 << 20), fb.read(1 << 20)
            if ca != cb:
                return False
            if not ca:
                return True


def _free_name(path: Path) -> Path:
    n = 1
    while True:
        candidate = path.with_name(f"{path.stem}-{n}{path.suffix}")
        if not candidate.exists():
            return candidate
        n += 1


def _merge_into(src: Path, dst: Path, renamed: list[tuple[str, str]], moved: list[Path]) -> None:
    """Move `src` to `dst`: folders merge entry by entry, a taken file name gets a free one (`name-1.ext`)."""
    if src.is_symlink():  # a visitor's folder holds no links of ours: drop rather than follow
        src.unlink()
        return
    if not dst.exists():
        os.replace(src, dst)
        moved.extend([dst] if dst.is_file() else [p for p in dst.rglob("*") if p.is_file()])
        return
    if src.is_dir() and dst.is_dir():
        for entry in sorted(src.iterdir()):
            _merge_into(entry, dst / entry.name, renamed, moved)
        shutil.rmtree(src, ignore_errors=True)
        return
    if src.is_file() and dst.is_file() and _same_file(src, dst):
        src.unlink()
        return
    target = _free_name(dst)
    os.replace(src, target)
    renamed.append((str(src), str(target)))
    moved.extend([target] if target.is_file() else [p for p in target.rglob("*") if p.is_file()])


def _rewrite_paths(path: Path, replacements: list[tuple[str, str]]) -> None:
    if path.suffix.lower() not in REWRITE_SUFFIXES or path.stat().st_size > REWRITE_MAX_BYTES:
        return
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return
    new = text
    for old, repl in replacements:
        new = new.replace(old, repl)
    if new != text:
        path.write_text(new, encoding="utf-8")


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

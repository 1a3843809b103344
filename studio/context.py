"""The contract every studio tab is written against, and who the person behind a request is.

Each tab module exposes ``create_<name>_tab(ctx: StudioContext) -> dict[str, component]`` and is called inside
``with gr.Tab(...)`` by :func:`studio.app.create_app`. Tabs share state only through the ``gr.State`` objects
below, so a tab never imports another tab; what several tabs need lives in a studio module (files.py,
errors.py, plots.py, run_view.py).

Every handler that touches files asks ``ctx.visitor(request)`` first. In public mode that is a visitor with their
own folder (uploads, configs, exclusions, runs, models, exports) and a Sandbox that every path they give passes
through; locally it is the one trusted user, who sees the whole workspace and runs folder as before.
"""

from __future__ import annotations

import os
import secrets
import shutil
import threading
from collections import OrderedDict
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import gradio as gr

from core.config.limits import Limits, downloads_allowed
from core.config.schema import EmbedConfig
from core.config.storage import default_dirs
from core.public.sandbox import PathRefused, Sandbox
from core.public.visitors import TooManyNewVisitors, Visitors, disk_usage
from studio.signin import session_user

# session -> visitor entries kept in memory (~200 bytes each); the least recently used go first. A page re-binds on
# reload from its browser store; an API client whose entry went would become a new visitor, so keep many.
MAX_SESSIONS = 200_000


class BusyAction(RuntimeError):
    """This visitor already has a heavy action running."""


@dataclass
class Visitor:
    """Who a request comes from and where their files live."""

    key: str  # what per-visitor limits are keyed by (never a folder name)
    root: Path  # their folder (local: the workspace)
    runs_dir: Path
    uploads: Path
    sandbox: Sandbox | None  # None locally: one trusted user may use any path
    limits: Limits | None = None

    @property
    def public(self) -> bool:
        return self.sandbox is not None

    def config(self, cfg: EmbedConfig) -> EmbedConfig:
        """A config to run for this visitor: their runs folder, and in public mode every path and model checked
        (PathRefused otherwise) and the limits applied."""
        if self.sandbox is not None:
            if self.limits:
                self.limits.check_config(cfg)
            cfg = self.sandbox.config(cfg)  # refuses a runs_dir outside their folder before it is replaced
        data = cfg.to_dict()
        data["runs_dir"] = str(self.runs_dir)  # the studio lists and re-attaches runs from here
        return EmbedConfig(**data)

    def model(self, name: str | None, key: str = "model") -> str:
        return self.sandbox.model(name, key) if self.sandbox else (name or "")

    def path(self, value: str | Path, key: str, write: bool = False) -> Path:
        return self.sandbox.path(value, key, write) if self.sandbox else Path(value)

    def run(self, run: str | Path | None) -> Path | None:
        """A run folder from a run id or path; in public mode only this visitor's (PathRefused otherwise)."""
        if not run:
            return None
        text = str(run).strip()
        candidate = Path(text) if ("/" in text or os.sep in text) else self.runs_dir / text
        if self.sandbox is None:
            return candidate
        resolved = candidate.resolve()
        if not resolved.is_relative_to(self.runs_dir.resolve()):
            raise PathRefused("run", f"{text[:80]!r} is not one of your runs")
        return resolved

    def owns(self, run_dir: str | Path | None) -> bool:
        return bool(run_dir) and (self.sandbox is None or Path(run_dir).resolve().is_relative_to(self.root))

    def check_disk(self) -> None:
        """Refuse new files once the visitor's folder is over its cap, or the server's disk is down to its reserve
        (public mode)."""
        if self.sandbox is None or self.limits is None:
            return
        existing = next(p for p in (self.root, *self.root.parents) if p.exists())  # made on its first write
        free = shutil.disk_usage(existing).free / 1e6
        if free < self.limits.min_free_disk_mb:
            raise PathRefused(
                "disk",
                f"this server's disk is nearly full ({free:.0f} MB free); new files are refused until idle visitors'"
                " folders are cleared. Try again later.",
            )
        used = disk_usage(self.root) / 1e6
        if used > self.limits.visitor_disk_mb:
            raise PathRefused(
                "disk",
                f"your folder holds {used:.0f} MB, over this server's {self.limits.visitor_disk_mb:g}"
                " MB per visitor; it is cleared a while after your last visit",
            )


@dataclass
class StudioContext:
    """Shared handles for the tabs of one studio (one ``gr.Blocks``).

    Attributes:
        workspace: per-server workspace root (default ./workspace; env STUDIO_WORKSPACE).
        runs_dir: where runs live locally (default ./runs; env STUDIO_RUNS_DIR); public visitors have their own.
        dataset: gr.State holding ``dict | None``: {"path", "format", "rows", "report": report.to_dict()}, the
            last VALID dataset.
        config: gr.State holding ``dict``: ``EmbedConfig.to_dict()``, the current valid config.
        run: gr.State holding ``str | None``: run_dir of the run shown (current or picked from history).
        run_ended: gr.State holding ``str | None``: the shown run once it has ended (finished, stopped or failed),
            None while it is live. Tabs that show a run's results (mined rows, models, history) also refresh on
            its change, since a run's results only exist once it has ended.
        public: public mode (a shared Space): visitors isolated and confined, limits in force.
        visitors: the visitor registry in public mode, else None.
    """

    workspace: Path
    runs_dir: Path
    dataset: gr.State
    config: gr.State
    run: gr.State
    run_ended: gr.State
    public: bool = False
    limits: Limits = field(default_factory=Limits)
    visitors: Visitors | None = None
    _sessions: OrderedDict[str, str] = field(default_factory=OrderedDict)
    _busy: dict[str, threading.Lock] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def bind(self, request: gr.Request | None, visitor_id: str) -> None:
        """Tie a page session to a checked visitor id (the page's load event does this from the browser's store)."""
        session = getattr(request, "session_hash", None)
        if session:
            with self._lock:
                self._sessions[session] = visitor_id
                self._sessions.move_to_end(session)
                while len(self._sessions) > MAX_SESSIONS:
                    self._sessions.popitem(last=False)

    def unbind(self, request: gr.Request | None) -> None:
        with self._lock:
            self._sessions.pop(getattr(request, "session_hash", None) or "", None)

    def visitor_id(self, request: gr.Request | None) -> str:
        """This session's visitor id: a signed-in user's (from Gradio's signed session cookie), else the one bound to
        the session; a session seen for the first time (an API client) becomes a new anonymous visitor."""
        has_cookie, user = session_user(request) if self.visitors is not None else (False, None)
        if user:
            return self.visitors.user(user)
        session = getattr(request, "session_hash", None) or ""
        with self._lock:
            known = self._sessions.get(session)
            if known:  # least recently *used* goes first: new sessions cannot push out visitors still at work
                self._sessions.move_to_end(session)
        if known and self.visitors is not None and self.visitors.is_user(known) and has_cookie:
            known = None  # signed out (or a borrowed session hash): a user's folder needs their sign-in
        if known and (self.visitors is None or self.visitors.valid(known)):
            return known
        new = self.visitor_id_new()
        self.bind(request, new)
        return new

    def visitor_id_new(self) -> str:
        """A new anonymous visitor id, or the page's error when too many arrive this minute."""
        if self.visitors is None:
            return secrets.token_urlsafe(12)
        try:
            return self.visitors.issue()
        except TooManyNewVisitors as exc:
            raise gr.Error(str(exc)) from None

    def visitor(self, request: gr.Request | None) -> Visitor:
        vid = self.visitor_id(request)
        if self.visitors is None:  # local: one trusted user; the token only keeps two tabs' uploads apart
            return Visitor(vid, self.workspace, self.runs_dir, self.workspace / "uploads" / vid, None)
        self.visitors.touch(vid)
        root = self.visitors.folder(vid)
        sandbox = Sandbox(root, allow_downloads=downloads_allowed())
        return Visitor(vid, root, root / "runs", root / "uploads", sandbox, self.limits)

    @contextmanager
    def heavy(self, request: gr.Request | None):
        """One heavy in-process action (mining, indexing, encoding) at a time per visitor, not per server: one
        visitor's search never waits for another's mining."""
        key = self.visitor_id(request)
        with self._lock:
            lock = self._busy.setdefault(key, threading.Lock())
        if not lock.acquire(blocking=False):
            raise BusyAction("You already have a search, mining or comparison running; wait for it to finish.")
        try:
            yield
        finally:
            lock.release()


def resolve_dirs(workspace: str | Path | None = None, runs_dir: str | Path | None = None) -> tuple[Path, Path]:
    """Workspace and runs directories: explicit argument, then env var, then persistent storage (STUDIO_DATA_DIR, or
    /data on a Space) or ./workspace and ./runs; both created."""
    default_ws, default_rd = default_dirs()
    ws = Path(workspace or os.environ.get("STUDIO_WORKSPACE") or default_ws).resolve()
    rd = Path(runs_dir or os.environ.get("STUDIO_RUNS_DIR") or default_rd).resolve()
    ws.mkdir(parents=True, exist_ok=True)
    rd.mkdir(parents=True, exist_ok=True)
    return ws, rd

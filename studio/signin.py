"""Sign in with Hugging Face on a public studio: Gradio's own OAuth (`gr.LoginButton`, `gr.OAuthProfile`,
`gr.OAuthToken`, from the `gradio[oauth]` extra).

Signing in is optional. An anonymous visitor keeps the id held in their browser; a signed-in one works in the folder
derived from their user name and the server's secret (`Visitors.user`), so their runs, datasets and models follow
them to any browser. On the first page load after signing in, the anonymous folder of that browser moves into the
user's (`Visitors.merge`). Who a request comes from is read from Gradio's signed session cookie on every request, so a
session hash alone never reaches a user's folder. Push to Hub uses the visitor's OAuth token and their namespace.

Where the button shows: on a Space (SYSTEM=spaces) whose README asks for OAuth (`hf_oauth: true` makes the Space set
OAUTH_CLIENT_ID, OAUTH_CLIENT_SECRET, OAUTH_SCOPES, OPENID_PROVIDER_URL), or off a Space with
STUDIO_OAUTH_MOCK_USER=<name> (development and tests: that name signs in, nothing reaches the internet); both need
the extra's packages (authlib, itsdangerous). Elsewhere the studio runs without it.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import shutil
import threading
import time
from pathlib import Path
from typing import Any

import gradio as gr
import gradio.oauth as gradio_oauth
from gradio.utils import get_space

from core.public.visitors import SEEN_FILE, STATE_FILE, VisitorBusy
from core.runs.queue import held_runs

OAUTH_VARS = ("OAUTH_CLIENT_ID", "OAUTH_CLIENT_SECRET", "OAUTH_SCOPES", "OPENID_PROVIDER_URL")
MOCK_USER_VAR = "STUDIO_OAUTH_MOCK_USER"
ANONYMOUS = (
    "*Anonymous: your work is tied to this browser.* Sign in with Hugging Face to keep it across browsers and "
    "devices and to push models with your own account."
)
log = logging.getLogger("studio")
_merging = threading.Lock()


def availability() -> tuple[bool, str]:
    """(whether sign-in is offered, why not when it is not)."""
    if get_space():
        if any(not os.environ.get(v) for v in OAUTH_VARS):
            return False, "this Space does not ask for OAuth (`hf_oauth: true` in its README)"
    elif not os.environ.get(MOCK_USER_VAR, "").strip():
        return False, "sign-in works on a Hugging Face Space"
    missing = [m for m in ("authlib", "itsdangerous") if importlib.util.find_spec(m) is None]
    if missing:
        return False, f"the `gradio[oauth]` extra is not installed ({', '.join(missing)} missing)"
    return True, ""


def _mock_info(user: str) -> dict[str, Any]:
    """What Gradio's local stand-in puts in the session after "signing in": a fixed user and a dummy token."""
    return {
        "access_token": f"mock-oauth-token-{user}",
        "token_type": "bearer",
        "expires_in": 8 * 3600,
        "scope": "openid profile write-repos manage-repos",
        "expires_at": int(time.time()) + 8 * 3600,
        "userinfo": {
            "sub": "0" * 24,
            "name": user,
            "preferred_username": user,
            "profile": f"https://huggingface.co/{user}",
            "picture": "",
        },
    }


def login_button() -> gr.LoginButton | None:
    """The "Sign in with Hugging Face" button where sign-in is available, else None."""
    on, _ = availability()
    if not on:
        return None
    user = os.environ.get(MOCK_USER_VAR, "").strip()
    if user and not get_space():
        # Gradio's local stand-in asks the Hub whose token this machine holds (network, and a token it may not
        # have); the stand-in user is named by STUDIO_OAUTH_MOCK_USER instead. Gradio offers no setting for it.
        gradio_oauth._get_mocked_oauth_info = lambda: _mock_info(user)
    return gr.LoginButton(size="sm", scale=0, min_width=220)


def session_user(request: Any) -> tuple[bool, str | None]:
    """(whether the request carries Gradio's session at all, the signed-in user name or None). Read from the signed
    session cookie only: never from anything the client sends in the request's body."""
    underlying = getattr(request, "request", None) if request is not None else None
    scope = getattr(underlying, "scope", None)
    if not isinstance(scope, dict) or "session" not in scope:
        return False, None
    info = (scope.get("session") or {}).get("oauth_info") or {}
    if info.get("expires_at") and info["expires_at"] < time.time():
        return True, None
    name = (info.get("userinfo") or {}).get("preferred_username")
    return True, (name if isinstance(name, str) and name.strip() else None)


def page_visitor(ctx: Any, stored: Any, profile: gr.OAuthProfile | None, request: Any) -> tuple[str | None, str]:
    """On page load: the anonymous id to keep in the browser, and a line for the page. A signed-in visitor's session
    is bound to their user folder, into which this browser's anonymous work is moved first."""
    anon = ctx.visitors.check(stored)
    if profile is None:
        anon = anon or ctx.visitor_id_new()
        ctx.bind(request, anon)
        return anon, ANONYMOUS
    user_id = ctx.visitors.user(profile.username)
    note = ""
    if anon:
        try:
            with _merging:
                moved = _move_work(ctx, anon, user_id)
            if moved:
                files = f"{moved} file" + ("s" if moved != 1 else "")
                note = f" The work of this browser from before you signed in ({files}) is now in your account."
        except VisitorBusy:
            note = (
                " Your training started before you signed in is still running in this browser's anonymous folder: "
                "sign out to follow it, and sign in again once it has ended to move it into your account."
            )
    ctx.bind(request, user_id)
    line = (
        f"Signed in as **{profile.username}**: your runs, datasets and models follow you to any browser or device, "
        f"and Push to Hub uses your account.{note}"
    )
    return anon, line


def _move_work(ctx: Any, anon: str, user_id: str) -> int:
    """Move this browser's anonymous work into the account; returns the number of files of work moved. The page's
    own state (what was selected and typed) goes with the work, replacing the account's, since this browser is where
    the user just worked; a browser with no work keeps the account's state (its anonymous folder is dropped)."""
    src = ctx.visitors.folder(anon)
    page = {STATE_FILE, SEEN_FILE}
    if not src.is_dir() or not any(p.name not in page for p in src.iterdir()):
        shutil.rmtree(src, ignore_errors=True)  # nothing but the page's state: the account's state is shown
        return 0
    busy = set(held_runs())
    if any(Path(b).resolve().is_relative_to(src.resolve()) for b in busy):
        raise VisitorBusy("a training started before you signed in is still running or queued")  # nothing moved
    had_state = (src / STATE_FILE).is_file()
    if had_state:
        (ctx.visitors.folder(user_id) / STATE_FILE).unlink(missing_ok=True)
    return ctx.visitors.merge(anon, user_id, busy=busy) - had_state


def push_credentials(
    typed_token: str | None,
    repo_id: str | None,
    model_dir: str | None,
    profile: gr.OAuthProfile | None,
    oauth_token: gr.OAuthToken | None,
) -> tuple[str, str]:
    """(token, repo id) for a push: a token typed by hand, else the visitor's OAuth token (never the server's); a
    repo id without a namespace goes into the signed-in visitor's own. The token is neither stored nor logged."""
    token = (typed_token or "").strip() or (oauth_token.token if oauth_token is not None else "")
    repo = (repo_id or "").strip()
    if profile is not None and "/" not in repo:
        folder = Path(model_dir or "model")
        name = folder.parent.name if folder.name == "model" else folder.name
        repo = f"{profile.username}/{repo or name or 'embedding-model'}"
    return token, repo


def no_token_message() -> str:
    on, _ = availability()
    how = "Sign in with Hugging Face (top of the page) or paste" if on else "Paste"
    return f"{how} a Hugging Face access token with write permission (huggingface.co/settings/tokens)."

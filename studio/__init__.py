"""The Gradio studio: `create_app()` builds it; `app.py` at the top level launches it."""

from studio.app import create_app

__all__ = ["create_app"]

"""Launch the Embedding Fine-Tuning Studio.

Locally it listens on 127.0.0.1:7860 (GRADIO_SERVER_NAME / GRADIO_SERVER_PORT override); on a Hugging Face Space
(SPACE_ID is set) it binds 0.0.0.0 so the Space's proxy can reach it. Never shares a public link.
"""

from __future__ import annotations

import os

from studio.app import create_app, launch_kwargs


def main() -> None:
    on_space = bool(os.environ.get("SPACE_ID"))
    host = os.environ.get("GRADIO_SERVER_NAME") or ("0.0.0.0" if on_space else "127.0.0.1")
    port = int(os.environ.get("GRADIO_SERVER_PORT") or 7860)
    demo = create_app()
    demo.queue(default_concurrency_limit=1)  # one heavy job at a time per event; polling handlers opt out
    demo.launch(server_name=host, server_port=port, share=False, **launch_kwargs())


if __name__ == "__main__":
    main()

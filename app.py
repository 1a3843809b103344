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
    # quiet: Gradio's banner would suggest `share=True`, which this studio never does; the address is printed here.
    demo.launch(server_name=host, server_port=port, share=False, quiet=True, prevent_thread_lock=True,
                 **launch_kwargs())
    print(f"Embedding Fine-Tuning Studio on {demo.local_url} (local only; Ctrl+C stops it)", flush=True)
    demo.block_thread()


if __name__ == "__main__":
    main()

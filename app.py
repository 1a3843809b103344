"""Launch the Embedding Fine-Tuning Studio.

Locally it listens on 127.0.0.1:7860 (GRADIO_SERVER_NAME / GRADIO_SERVER_PORT override); on a Hugging Face Space
(SPACE_ID is set) it binds 0.0.0.0 so the Space's proxy can reach it. Never shares a public link.
`--public` (or STUDIO_PUBLIC=1, or a Space) turns on public mode: isolated visitors, confined paths, limits.
"""

from __future__ import annotations

import argparse
import os

from studio.app import create_app, launch_kwargs

HEAVY_CONCURRENCY = 4  # events running at once per handler; heavy actions are also limited to one per visitor


def main(argv: list[str] | None = None) -> None:
    args = argparse.ArgumentParser(description="Embedding Fine-Tuning Studio")
    args.add_argument("--public", action="store_true", help="public mode, as on a shared Space")
    a = args.parse_args(argv)
    if a.public:
        os.environ["STUDIO_PUBLIC"] = "1"
    on_space = bool(os.environ.get("SPACE_ID"))
    host = os.environ.get("GRADIO_SERVER_NAME") or ("0.0.0.0" if on_space else "127.0.0.1")
    port = int(os.environ.get("GRADIO_SERVER_PORT") or 7860)
    demo = create_app()
    demo.queue(default_concurrency_limit=HEAVY_CONCURRENCY)
    demo.launch(server_name=host, server_port=port, share=False, **launch_kwargs())


if __name__ == "__main__":
    main()

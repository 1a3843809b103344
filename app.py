"""Launch the Embedding Fine-Tuning Studio.

Locally it listens on 127.0.0.1:7860 (GRADIO_SERVER_NAME / GRADIO_SERVER_PORT override); on a Hugging Face Space
(SPACE_ID is set) it binds 0.0.0.0 so the Space's proxy can reach it. Never shares a public link.
`--public` (or STUDIO_PUBLIC=1, or a Space) turns on public mode: isolated visitors, confined paths, limits.
With persistent storage (STUDIO_DATA_DIR, or /data on a Space) the workspace, runs and Hugging Face cache live there.
"""

from __future__ import annotations

import argparse
import os

from core.config.storage import use_persistent_storage

use_persistent_storage()  # before huggingface_hub is imported: it reads HF_HOME once

from studio.app import create_app, launch_kwargs  # noqa: E402

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
    # quiet: Gradio's banner would suggest `share=True`, which this studio never does; the address is printed here.
    demo.launch(
        server_name=host,
        server_port=port,
        share=False,
        quiet=True,
        prevent_thread_lock=True,
        **launch_kwargs(workspace=demo.studio_context.workspace),
    )
    mode = "public mode" if demo.studio_context.public else "local mode"
    print(f"Embedding Fine-Tuning Studio on {demo.local_url} ({mode}; Ctrl+C stops it)", flush=True)
    demo.block_thread()


if __name__ == "__main__":
    main()

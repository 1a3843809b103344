"""`python -m core <command>`: validate | config | validate-config | train | mine | estimate | eval | search |
similarity | runs | stop | export-run | setup-dirs | index | rag-dataset | export-onnx. The grammar is core/cli/parser.py, the
commands core/cli/.

Exit codes: 0 success, 1 invalid input or a failed run, 2 usage error. Bad input prints a message, never a traceback.
"""

from __future__ import annotations

import importlib
import os
import sys

from core.cli.parser import build_parser
from core.errors import cli_message, expected

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


# Commands that print their own progress lines (from the run's events, or the index's chunk counts).
OWN_PROGRESS = {"train", "index", "rag-dataset"}
LIBRARY_BARS_OFF = ("TQDM_DISABLE", "HF_HUB_DISABLE_PROGRESS_BARS", "HF_DATASETS_DISABLE_PROGRESS_BARS")


def one_progress_display(command: str, terminal: bool) -> None:
    """The libraries' tqdm bars (weights loading, encode batches, FAISS queries, shard writing) are turned off where
    the project prints its own progress or the output is not a terminal: in a log file they would interleave with the
    project's lines. Set before the libraries are imported (tqdm reads TQDM_* once); a value the user set stays."""
    if command in OWN_PROGRESS or not terminal:
        for name in LIBRARY_BARS_OFF:
            os.environ.setdefault(name, "1")
    if os.environ.get("TQDM_DISABLE", "").lower() in ("1", "true"):
        _silence_tqdm()


def _silence_tqdm() -> None:
    """TQDM_DISABLE only changes tqdm's default, and the libraries pass `disable=` themselves (sentence-transformers'
    encode and mine_hard_negatives, transformers' weight loading): every bar of this process is turned off at its
    source instead. No library offers a switch that covers them all."""
    import tqdm.std

    init = tqdm.std.tqdm.__init__
    if getattr(init, "silenced", False):
        return

    def quiet(self, *args, **kwargs):
        kwargs["disable"] = True
        init(self, *args, **kwargs)

    quiet.silenced, quiet.original = True, init
    tqdm.std.tqdm.__init__ = quiet


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    one_progress_display(args.command, sys.stderr.isatty())
    if args.command in ("search", "similarity") and not args.model:
        args.model = ["outputs/embedding_model"]
    if args.command == "similarity" and len(args.texts) < 2:
        print("similarity needs at least two texts", file=sys.stderr)
        return 2
    module, name = args.fn.split(":")
    try:
        # Only the command that runs is imported (torch and the trainer take seconds): `--help` answers at once.
        handler = getattr(importlib.import_module(f"core.cli.{module}"), name)
        return handler(args)
    except Exception as exc:  # the user's errors get one paragraph; bugs keep their traceback
        if not expected(exc):
            raise
        print(cli_message(exc), file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\naborted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())

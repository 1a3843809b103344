"""`python -m core <command>`: validate | config | validate-config | train | mine | estimate | eval | search |
similarity | runs | stop | setup-dirs | index | rag-dataset | export-onnx. The grammar is core/cli/parser.py, the
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


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
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

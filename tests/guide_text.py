"""The original guide's text (../shared/guide/embedding-fine-tuning.md next to the checkout), cut into what a user
copies from it: fenced blocks by language, and the `make …` / `python …` command lines of its bash blocks."""

from __future__ import annotations

import re
import shlex

from tests.conftest import ROOT

GUIDE = ROOT.parent / "shared" / "guide" / "embedding-fine-tuning.md"
FIXTURES = ROOT / "tests" / "fixtures" / "guide"
MISSING = f"the original guide is not at {GUIDE} (a clone without ../shared/guide): nothing to check its text against"
_FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.M | re.S)
_HEREDOC = re.compile(r"cat > (\S+) << (\w+)\n(.*?)\n\2$", re.M | re.S)


def text() -> str:
    return GUIDE.read_text(encoding="utf-8")


def blocks(lang: str, source: str | None = None) -> list[tuple[str, str]]:
    """(the ### heading above it, body) of every fenced block in `lang`."""
    source = source if source is not None else text()
    out = []
    for m in _FENCE.finditer(source):
        if m.group(1) == lang:
            heading = re.findall(r"^### (.+)$", source[: m.start()], re.M)
            out.append((heading[-1].strip() if heading else "", m.group(2)))
    return out


def heredocs(source: str | None = None) -> dict[str, str]:
    """File path -> the text the guide's `cat > FILE << EOF … EOF` writes (the content lines, with a final newline)."""
    source = source if source is not None else text()
    return {m.group(1): m.group(3) + "\n" for _, body in blocks("bash", source) for m in _HEREDOC.finditer(body)}


def command_lines(source: str | None = None) -> list[str]:
    """Every `make …` and `python …` command of the bash blocks as one line: comments and heredoc bodies left out,
    `\\` continuations joined, a quoted multi-line argument (`python -c "…"`) kept whole, `a && b` split."""
    out = []
    for _, body in blocks("bash", source):
        body = _HEREDOC.sub("", body)
        pending, joined = "", False
        for line in body.splitlines():
            if not pending and (not line.strip() or line.lstrip().startswith("#")):
                continue
            pending = (pending + line.strip() if joined else f"{pending}\n{line}") if pending else line.strip()
            joined = pending.endswith("\\")
            if joined:
                pending = pending[:-1].rstrip() + " "
                continue
            try:
                shlex.split(pending)
            except ValueError:  # an open quote: the argument goes on on the next line
                continue
            for part in pending.split(" && "):
                if part.startswith(("make ", "python ")) or part == "make":
                    out.append(part.strip())
            pending = ""
    return out

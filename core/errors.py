"""One error policy for CLI, training and studio: which exceptions are the user's to fix, and the one paragraph
they read instead of a traceback. The engine's own errors (ConfigError, DataError, ModelError, ...) and its
ValueErrors already say what to do; anything else is a bug worth a traceback in the log."""

from __future__ import annotations

from core.data.validate import DataError

OUT_OF_MEMORY = (
    "Out of memory. Lower batch_size, set mini_batch_size (e.g. 8) to use the cached loss, lower "
    "max_seq_length, or use the `memory` preset."
)


def expected(exc: BaseException) -> bool:
    """An error the user can fix from its message (bad input, missing file/model), not a bug worth a traceback."""
    return type(exc).__module__.startswith("core") or isinstance(exc, (ValueError, OSError))  # OSError: a
    # missing or unreadable file, a full disk


def user_message(exc: BaseException) -> str:
    """One readable paragraph for an error from the engine (what the studio and CLI show instead of a traceback)."""

    if isinstance(exc, DataError):
        return exc.report.to_text()
    text = str(exc).strip() or "unexpected error"
    return text if expected(exc) else f"{type(exc).__name__}: {text}"


def run_message(exc: BaseException, log_file: str) -> str:
    """The message of a run's `failed` event: the user's message, memory advice, or where the traceback is."""
    if expected(exc):
        return user_message(exc)
    text = str(exc).strip()
    if isinstance(exc, MemoryError) or "out of memory" in text.lower():
        return OUT_OF_MEMORY
    return f"{type(exc).__name__}: {text or 'unexpected error'} (details in the run's {log_file})"


def cli_message(exc: BaseException) -> str:
    """What the CLI prints on stderr: a data report as is, any other expected error after `error:`."""

    return exc.report.to_text() if isinstance(exc, DataError) else f"error: {user_message(exc)}"

"""Log lines pass through the same redaction as dead letters (``ledger.redaction``).

Installed as the process's log record factory, so every record is redacted when it is made,
whatever handler, formatter or library (dramatiq, APScheduler, httpx, psycopg) emits it:
the message with its arguments, and the traceback of an exception.
"""

from __future__ import annotations

import logging
import traceback
from typing import Any

from ledger.redaction import redact_text

__all__ = ["TRACEBACK_LIMIT_CHARS", "install_redaction"]

TRACEBACK_LIMIT_CHARS = 65_536
"""A traceback is kept up to this length (a log message up to ``MAX_STRING_CHARS``)."""


def install_redaction() -> None:
    """Make every log record of this process redacted (idempotent)."""
    previous = logging.getLogRecordFactory()
    if getattr(previous, "redacts", False):
        return

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        try:
            message = record.getMessage()
        except Exception:  # a malformed format string: logging reports it at emit time
            return record
        record.msg, record.args = redact_text(message), None
        if record.exc_info and record.exc_info[0] is not None and not record.exc_text:
            text = "".join(traceback.format_exception(*record.exc_info)).rstrip("\n")
            record.exc_text = redact_text(text, limit=TRACEBACK_LIMIT_CHARS)
        return record

    factory.redacts = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(factory)

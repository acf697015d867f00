"""How Refundry's processes log: redacted always, as text or as one JSON object per line.

Redaction: :func:`install_redaction` makes the process's log record factory pass every
record through the redaction the dead-letter queue uses (``ledger.redaction``) when it is
made, whatever handler, formatter or library (dramatiq, APScheduler, httpx, psycopg) emits
it: the message with its arguments, and the traceback of an exception.

Format (``REFUNDRY_LOG_FORMAT``): ``text`` is one line per record for people; ``json`` is
one JSON object per line for log pipelines::

    {"time": "2026-05-01T12:00:00.123+00:00", "level": "INFO", "logger": "workers.actors",
     "process": 4242, "message": "generation gen-42: failed → refunded",
     "inbox_id": "in_…", "generation_id": "gen-42", "provider": "kling", "queue": "results"}

Every line about an event carries its ids (:data:`ID_FIELDS`): those bound for the work in
progress (:class:`MessageLogIds` binds a message's inbox id and queue, the actor its
provider and generation id with :func:`bind_log_ids`), and those a call passes as
``extra={"purchase": …}``. The standard library is enough for this (a ``contextvars``
context and a ``Formatter``); structlog would add a second logging pipeline beside the one
dramatiq, uvicorn and APScheduler write to.
"""

from __future__ import annotations

import json
import logging
import sys
import traceback
from collections.abc import Mapping
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any, Final

from dramatiq import Broker, Middleware
from dramatiq.broker import MessageProxy

from ledger.redaction import redact_text

__all__ = [
    "ID_FIELDS",
    "TRACEBACK_LIMIT_CHARS",
    "JsonFormatter",
    "MessageLogIds",
    "bind_log_ids",
    "configure_logging",
    "install_redaction",
    "uvicorn_log_config",
]

ID_FIELDS: Final = ("inbox_id", "generation_id", "purchase", "provider", "queue", "message_id")
"""What a JSON line says it is about, when it is known."""

TEXT_FORMAT: Final = "%(asctime)s %(levelname)s %(name)s: %(message)s"

_bound: ContextVar[Mapping[str, str]] = ContextVar("refundry_log_ids", default={})  # noqa: B039

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


def bind_log_ids(**ids: str | None) -> None:
    """Add ``ids`` to those of the message in hand, until it is done (:class:`MessageLogIds`
    clears them then, so nothing leaks to the next message)."""
    unknown = set(ids) - set(ID_FIELDS)
    if unknown:
        raise ValueError(f"not a log id field: {sorted(unknown)}")
    _bound.set({**_bound.get(), **{k: str(v) for k, v in ids.items() if v is not None}})


class MessageLogIds(Middleware):
    """dramatiq middleware, first in the broker's list: while a worker thread handles a
    message, its lines carry the message's inbox id (a message's id is its inbox row's id,
    ``workers.actors.enqueue_event``) and queue, dramatiq's own lines included (its retry
    and failure lines are written before the last after-hook, this one's, runs); the actor
    adds the generation and provider (:func:`bind_log_ids`)."""

    def before_process_message(self, broker: Broker, message: MessageProxy) -> None:
        _bound.set({"inbox_id": message.message_id, "queue": message.queue_name})

    def after_process_message(
        self,
        broker: Broker,
        message: MessageProxy,
        *,
        result: Any = None,
        exception: BaseException | None = None,
    ) -> None:
        _bound.set({})

    def after_skip_message(self, broker: Broker, message: MessageProxy) -> None:
        _bound.set({})


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line: ``time`` (UTC, ISO 8601, milliseconds),
    ``level``, ``logger``, ``process``, ``message``, the ids known for it and, for an
    exception, ``exception`` (its redacted traceback)."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "process": record.process,
            "message": record.getMessage(),
        }
        line.update(_bound.get())
        for name in ID_FIELDS:
            value = record.__dict__.get(name)
            if value is not None:
                line[name] = str(value)
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            line["exception"] = record.exc_text
        return json.dumps(line, ensure_ascii=False, default=str)


def configure_logging(log_format: str, *, level: int = logging.INFO) -> None:
    """Log ``level`` and above to this process's standard error in ``log_format`` (``text``
    or ``json``). A handler the process has already (dramatiq's worker processes write to
    a pipe their parent reads) keeps its stream and takes the format; else one is added.
    APScheduler's per-run INFO lines are left out (the sweeps log what they do)."""
    formatter: logging.Formatter = (
        JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT)
    )
    root = logging.getLogger()
    root.setLevel(level)
    if not root.handlers:
        added = logging.StreamHandler(sys.stderr)
        added.setFormatter(formatter)
        root.addHandler(added)
    elif log_format == "json":
        for handler in root.handlers:
            handler.setFormatter(formatter)
    logging.getLogger("apscheduler").setLevel(logging.WARNING)


def uvicorn_log_config(log_format: str) -> dict[str, Any] | None:
    """uvicorn's ``log_config`` for ``log_format``: with ``json``, uvicorn's own lines and
    every other line of each web process (uvicorn applies it in each process it starts) go
    through :class:`JsonFormatter` to standard error; with ``text``, None (uvicorn's
    default)."""
    if log_format != "json":
        return None
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": JsonFormatter}},
        "handlers": {
            "json": {
                "class": "logging.StreamHandler",
                "formatter": "json",
                "stream": "ext://sys.stderr",
            }
        },
        "root": {"handlers": ["json"], "level": "INFO"},
        "loggers": {
            "uvicorn": {"level": "INFO"},
            "uvicorn.error": {"level": "INFO"},
            "uvicorn.access": {"level": "INFO"},
        },
    }

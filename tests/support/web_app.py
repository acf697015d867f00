"""The ``refundry web`` ASGI app in this process (``workers.web.create_app``), over a fresh
SQLite ledger and the session's Redis, with the settings a test gives."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

from starlette.applications import Starlette

from tests.support.redis_server import RedisServer
from workers import runtime


@contextlib.contextmanager
def web_app(folder: Path, redis_server: RedisServer, **settings: str) -> Iterator[Starlette]:
    """The app with ``settings`` (variable → value) set in this process while it is used;
    the ledger is created and migrated first, as ``refundry web`` finds it."""
    from workers.web import create_app

    env = settings | {
        "REDIS_URL": redis_server.url,
        "DATABASE_URL": f"sqlite:///{folder / 'ledger.sqlite3'}",
        "REFUNDRY_HOME": str(folder / "home"),
    }
    saved = {name: os.environ.get(name) for name in env}
    os.environ.update(env)
    runtime.reset()
    try:
        runtime.ledger()
        yield create_app()
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        runtime.reset()

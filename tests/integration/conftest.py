"""The ledger under test, on each backend: SQLite in a temp dir, PostgreSQL on the session's
real server (a fresh database per test)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ledger import Ledger, open_ledger

BACKENDS = ["sqlite", "postgresql"]


@pytest.fixture(params=BACKENDS)
def ledger_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'ledger.sqlite3'}"
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture
def ledger(ledger_url: str) -> Iterator[Ledger]:
    book = open_ledger(ledger_url, policy_version="test-1")
    yield book
    book.db.close()

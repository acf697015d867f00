"""The named SQL queries of ``sql/queries.sql``, loaded once.

Each query is written once with ``:name`` placeholders; the PostgreSQL backend rewrites
them to psycopg's ``%(name)s`` form. Values are always bound as parameters.
"""

from __future__ import annotations

import re
from functools import cache
from importlib import resources

__all__ = ["migrations", "query", "to_pyformat"]

_HEADER = re.compile(r"^-- name: ([\w@]+)\s*$", re.MULTILINE)
_PLACEHOLDER = re.compile(r"(?<![:\w]):(\w+)")


@cache
def _all_queries() -> dict[str, str]:
    text = (resources.files("ledger") / "sql" / "queries.sql").read_text(encoding="utf-8")
    parts = _HEADER.split(text)
    # parts = [preamble, name1, body1, name2, body2, ...]
    return {
        name: body.strip().rstrip(";") for name, body in zip(parts[1::2], parts[2::2], strict=True)
    }


def query(name: str, dialect: str = "") -> str:
    """The SQL text of the named query (``:name`` placeholders).

    A query written ``-- name: x@postgresql`` replaces ``x`` on that dialect only (row-locking
    clauses SQLite does not have; there, ``BEGIN IMMEDIATE`` already serializes writers).
    """
    queries = _all_queries()
    return queries.get(f"{name}@{dialect}") or queries[name]


def to_pyformat(sql: str) -> str:
    """``:name`` → ``%(name)s`` for psycopg; a literal ``%`` is doubled."""
    return _PLACEHOLDER.sub(r"%(\1)s", sql.replace("%", "%%"))


def migrations(dialect: str) -> list[tuple[int, str, str]]:
    """``(version, name, sql)`` of every migration of ``dialect``, in version order."""
    folder = resources.files("ledger") / "sql" / "migrations" / dialect
    found = []
    for item in folder.iterdir():
        if item.name.endswith(".sql"):
            version = int(item.name.split("_", 1)[0])
            found.append(
                (version, item.name.removesuffix(".sql"), item.read_text(encoding="utf-8"))
            )
    return sorted(found)

"""PostgreSQL connections: how large each process's pool is, and the check that every
Refundry process's pools, on every host, fit within the server's ``max_connections``.

| process | pool (connections at most) |
| --- | --- |
| ``refundry worker -p P -t T`` | ``T + 2`` per process: ``P * (T + 2)`` for the command |
| ``refundry scheduler`` | ``REFUNDRY_PG_POOL_SIZE`` (10) |
| ``refundry web -p N`` | ``REFUNDRY_PG_POOL_SIZE`` (10) per process: ``N * 10`` |

A worker thread holds one connection at a time (one message, one transaction); the two
spare ones cover a dead letter or an alert written while the pool is otherwise full.

**The limit.** The sum over every host of those figures must stay within ``max_connections
- superuser_reserved_connections`` (PostgreSQL's defaults: 100 - 3,
https://www.postgresql.org/docs/current/runtime-config-connection.html), less what other
applications of the database use. Each pooled connection is named ``refundry-pool <id>
<size>`` (``application_name``), so a starting process reads from ``pg_stat_activity`` the
pools every running Refundry process has opened, wherever it runs (a pool keeps at least one
connection open), and refuses to start (``ConfigurationError``, exit 4) when its own pools
would take the sum of the pools' sizes and the other clients' connections past the limit.
Raise ``max_connections``, or put a pooler (PgBouncer in transaction mode) in between and
point ``DATABASE_URL`` at it.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass

from ledger import Ledger
from ledger.errors import ConfigurationError

__all__ = [
    "POOL_NAME",
    "WORKER_SPARE",
    "ConnectionRoom",
    "application_name",
    "check_room",
    "worker_pool_size",
]

POOL_NAME = "refundry-pool"
WORKER_SPARE = 2
"""Connections a worker process's pool holds beyond one per thread."""


def worker_pool_size(threads: int) -> int:
    """The pool of one worker process of ``threads`` threads."""
    return threads + WORKER_SPARE


def application_name(size: int) -> str:
    """The name every connection of one pool of ``size`` carries: unique per pool."""
    return f"{POOL_NAME} {os.getpid()}-{uuid.uuid4().hex[:8]} {size}"


@dataclass(frozen=True, slots=True)
class ConnectionRoom:
    """What the server allows and what is taken: ``refundry_pools`` is the sum of the sizes
    of the Refundry pools connected now, ``others`` the other clients' connections."""

    max_connections: int
    reserved: int
    refundry_pools: int
    others: int

    @property
    def free(self) -> int:
        """Connections no pool may yet grow into."""
        return self.max_connections - self.reserved - self.refundry_pools - self.others


def room(ledger: Ledger, *, leave_out: str | None = None) -> ConnectionRoom | None:
    """The server's connections now (None on SQLite); ``leave_out`` is the name of the
    asking process's own pool, not counted."""
    if ledger.db.dialect != "postgresql":
        return None
    with ledger.db.read() as tx:
        limits = tx.one("pg_connection_limits")
        rows = tx.all("pg_connections_by_name")
    assert limits is not None
    pools, others = 0, 0
    for row in rows:
        name, count = str(row["name"] or ""), int(row["n"])
        parts = name.split(" ")
        if len(parts) == 3 and parts[0] == POOL_NAME and parts[2].isdigit():
            if name != leave_out:
                pools += int(parts[2])
        else:
            others += count
    return ConnectionRoom(int(limits["max_connections"]), int(limits["reserved"]), pools, others)


def check_room(ledger: Ledger, needed: int, *, what: str, own_pool: str | None = None) -> None:
    """Raise ``ConfigurationError`` when ``needed`` more connections (``what``: the
    processes asking, for the message) would take PostgreSQL past its limit (module
    docstring); nothing on SQLite."""
    found = room(ledger, leave_out=own_pool)
    if found is None or needed <= found.free:
        return
    raise ConfigurationError(
        "PostgreSQL has too few connections for these pools: raise max_connections, "
        "run fewer processes or threads, or use a pooler",
        starting=what,
        needed=needed,
        free=found.free,
        max_connections=found.max_connections,
        reserved=found.reserved,
        refundry_pools=found.refundry_pools,
        other_clients=found.others,
    )

"""What ``refundry bench`` prints: a table (rich) and, with ``--json``, one JSON object as the
last line of stdout; and the machine the figures were measured on."""

from __future__ import annotations

import json
import os
import platform
import sqlite3
import sys
from importlib.metadata import version
from typing import Any

import click
import pika
import psycopg
import redis
from rich.console import Console
from rich.table import Table

__all__ = ["machine", "print_report"]

_LABELS: dict[str, str] = {
    "events": "events",
    "bare_per_s": "bare dramatiq (no-op), msgs/s",
    "peer_per_s": "hand-written peer, refunds/s",
    "refundry_per_s": "Refundry pipeline, refunds/s",
    "ratio": "Refundry / bare",
    "peer_ratio": "peer / bare",
    "rate_per_s": "offered rate, events/s",
    "latency_events": "events at the offered rate",
    "p50_ms": "p50 failure known → refund committed, ms",
    "p99_ms": "p99, ms",
    "max_ms": "max, ms",
    "rss_mb_max": "peak RSS per Refundry worker process, MiB",
    "bare_rss_mb_max": "peak RSS per bare/peer worker process, MiB",
    "storm_events": "storm: failures reported at once",
    "storm_seconds": "storm: seconds until all refunded",
    "storm_per_s": "storm: refunds/s",
    "ledger_check": "ledger check",
}


def machine(redis_url: str, database_url: str, backend: str) -> dict[str, Any]:
    """Cores, load average, versions and the backend, for the record beside the figures."""
    if redis_url.startswith("amqp"):  # BROKER_URL=amqp://…: the RabbitMQ server's version
        connection = pika.BlockingConnection(pika.URLParameters(redis_url))
        try:  # pika keeps what the server announced on its connection (AMQP Connection.Start)
            announced = connection._impl.server_properties.get("version", b"?")
        finally:
            connection.close()
        broker = {
            "rabbitmq_server": announced.decode() if isinstance(announced, bytes) else announced
        }
    else:
        r = redis.Redis.from_url(redis_url)
        try:
            broker = {"redis_server": str(r.info("server").get("redis_version"))}
        finally:
            r.close()
    if backend == "postgresql":
        with psycopg.connect(database_url, autocommit=True) as conn:
            row = conn.execute("SHOW server_version").fetchone()
        database = f"PostgreSQL {row[0] if row else '?'}"
    else:
        database = f"SQLite {sqlite3.sqlite_version}"
    return {
        "cores": os.cpu_count(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "cpu": platform.processor() or platform.machine(),
        "python": platform.python_version(),
        "dramatiq": version("dramatiq"),
        **broker,
        "database": database,
        "backend": backend,
    }


def print_report(figures: dict[str, Any], *, as_json: bool) -> None:
    """The table on stdout; with ``as_json`` the JSON object after it, as the last line."""
    table = Table(title="refundry bench")
    table.add_column("measure")
    table.add_column("value", justify="right")
    for key, label in _LABELS.items():
        if key in figures:
            value = figures[key]
            table.add_row(label, f"{value:,}" if isinstance(value, int | float) else str(value))
    settings = figures.get("settings", {})
    table.add_row("settings", ", ".join(f"{k}={v}" for k, v in settings.items()))
    where = figures.get("machine", {})
    table.add_row("machine", ", ".join(f"{k}={v}" for k, v in where.items()))
    Console(file=sys.stdout, width=120).print(table)
    if as_json:
        click.echo(json.dumps(figures, sort_keys=True))

"""``refundry bench --ingress``: verified webhooks per second through a local ``refundry web``.

Starts ``refundry web`` (uvicorn) on a free loopback port with a fresh home (SQLite ledger,
embedded Redis, unless ``DATABASE_URL`` / ``REDIS_URL`` say otherwise) and a random Kling
signing secret, signs N distinct Kling callbacks with the ``standardwebhooks`` library
beforehand, posts them over C keep-alive connections, checks that every one was answered
200 and kept in the inbox, and prints one JSON line. Each delivery is verified (HMAC and
time window), written to the inbox in its own transaction and enqueued on Redis; no worker
applies them. Never asserted by a test: the figures go to BENCHMARKS.md.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import platform
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from standardwebhooks import Webhook

from ledger import open_ledger
from ledger.private_files import open_private

__all__ = ["run_ingress_bench"]

HOST = "127.0.0.1"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def _requests(count: int, secret: str, port: int) -> list[bytes]:
    """Each delivery as the raw HTTP/1.1 request Kling would send (signed now)."""
    hook, stamp = Webhook(secret), datetime.now(tz=UTC)
    built = []
    for i in range(count):
        task = f"bench-{i}"
        body = json.dumps({"task_id": task, "task_status": "failed", "task_status_msg": "bench"})
        head = (
            f"POST /webhooks/kling HTTP/1.1\r\nHost: {HOST}:{port}\r\n"
            "Content-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nwebhook-id: msg-{task}\r\n"
            f"webhook-timestamp: {int(stamp.timestamp())}\r\n"
            f"webhook-signature: {hook.sign(f'msg-{task}', stamp, body)}\r\n\r\n"
        )
        built.append(head.encode() + body.encode())
    return built


async def _connection(port: int, requests: list[bytes], latencies: list[float]) -> int:
    """Send ``requests`` one after another on one keep-alive connection; count the 200s.

    Raw HTTP/1.1 rather than an HTTP client library: the load shares the machine's cores
    with the server under test, and a client library's own cost per request would be
    measured as the server's."""
    reader, writer = await asyncio.open_connection(HOST, port)
    ok = 0
    try:
        for request in requests:
            began = time.perf_counter()
            writer.write(request)
            status = (await reader.readline()).split(b" ", 2)
            length = 0
            while (line := await reader.readline()) not in (b"\r\n", b""):
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            await reader.readexactly(length)
            latencies.append(time.perf_counter() - began)
            ok += status[1] == b"200"
    finally:
        writer.close()
    return ok


async def _load(port: int, requests: list[bytes], concurrency: int) -> tuple[int, list[float]]:
    latencies: list[float] = []
    slices = [requests[i::concurrency] for i in range(concurrency)]
    counts = await asyncio.gather(*(_connection(port, part, latencies) for part in slices))
    return sum(counts), latencies


def _wait_up(port: int, proc: subprocess.Popen[bytes], timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("refundry web exited before it served")
        try:
            if httpx.get(f"http://{HOST}:{port}/healthz", timeout=1.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"refundry web did not answer within {timeout_s:g} s")


def run_ingress_bench(deliveries: int, concurrency: int, processes: int) -> int:
    """Run the benchmark, print its JSON line; the exit status is 0 when every delivery was
    answered 200 and kept."""
    home = Path(tempfile.mkdtemp(prefix="refundry-bench-"))
    secret = "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()
    port = _free_port()
    env = os.environ | {
        "REFUNDRY_HOME": str(home),
        "KLING_WEBHOOK_SECRET": secret,
        "FAL_JWKS_URL": "off",
    }
    command = [sys.executable, "-m", "workers.cli", "web", "--host", HOST, "--port", str(port)]
    with open_private(home / "web.log", "wb") as log:
        proc = subprocess.Popen(
            [*command, "-p", str(processes)], env=env, stdout=log, stderr=subprocess.STDOUT
        )
    try:
        _wait_up(port, proc)
        requests = _requests(deliveries, secret, port)
        began = time.perf_counter()
        ok, latencies = asyncio.run(_load(port, requests, concurrency))
        wall_s = time.perf_counter() - began
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    database = env.get("DATABASE_URL") or f"sqlite:///{home / 'ledger.sqlite3'}"
    ledger = open_ledger(database, policy_version="bench")
    try:
        kept = ledger.inbox.counts().get("pending", {}).get("n", 0)
    finally:
        ledger.db.close()
    latencies_ms = sorted(round(1000 * s, 1) for s in latencies) or [0.0]

    def at(q: float) -> float:
        return latencies_ms[round(q * (len(latencies_ms) - 1))]

    report: dict[str, Any] = {
        "deliveries": deliveries,
        "answered_200": ok,
        "kept": kept,
        "concurrency": concurrency,
        "server_processes": processes,
        "wall_s": round(wall_s, 2),
        "webhooks_per_s": round(deliveries / wall_s, 1),
        "p50_ms": at(0.50),
        "p99_ms": at(0.99),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
    }
    print(json.dumps(report))
    if ok == deliveries == kept:
        shutil.rmtree(home, ignore_errors=True)
        return 0
    print(f"refundry: the server's home is kept for inspection: {home}", file=sys.stderr)
    return 1

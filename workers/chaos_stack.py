"""Everything ``refundry chaos`` runs against, started on loopback: a real Redis and a real
PostgreSQL (the servers the test suite starts, from ``tests/support``), a fake Stripe API and
a fake Kling status API (local HTTP servers answering as those APIs document, also from
``tests/support``), ``refundry web``, ``refundry scheduler`` and several ``refundry worker``
groups, each a process group that can be SIGKILLed and started again.

``refundry chaos`` therefore runs from a checkout of the repository with the test extras
installed (``make install``); elsewhere it stops at once with a ``ConfigurationError``
saying so. The support modules are loaded by name, so the package itself never depends on
the test tree.
"""

from __future__ import annotations

import base64
import contextlib
import importlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import IO, Any

import httpx

from ledger.errors import ConfigurationError
from ledger.private_files import open_private

__all__ = [
    "KLING_SECRET",
    "PACK_AMOUNT",
    "PACK_CREDITS",
    "PACK_PRICE",
    "SECRETS",
    "STRIPE_SECRET",
    "Stack",
]

KLING_SECRET = "whsec_" + base64.b64encode(b"refundry-chaos-kling-secret-32b").decode()
STRIPE_SECRET = "whsec_refundry_chaos_stripe_endpoint"
STRIPE_KEY = "sk_test_refundry_chaos"
KLING_ACCESS, KLING_KEY = "chaos-kling-access-key-id", "chaos-kling-secret-key-0123456789"
PACK_PRICE, PACK_AMOUNT, PACK_CREDITS = "price_chaos_pack", 1900, 500
_RESTART_TIMEOUT_S = 180.0
"""How long a restarted Redis or PostgreSQL may take to answer before the run gives up."""
SECRETS = (KLING_SECRET, STRIPE_SECRET, STRIPE_KEY, KLING_KEY)
"""What must never be written in clear to a log, a dead letter or the inbox."""


def _support(module: str) -> Any:
    """``tests.support.<module>``, or a clear refusal when the checkout's test tree is absent."""
    checkout = str(Path(__file__).resolve().parent.parent)
    if (Path(checkout) / "tests" / "support").is_dir() and checkout not in sys.path:
        sys.path.append(checkout)  # the checkout this package runs from (an editable install)
    try:
        return importlib.import_module(f"tests.support.{module}")
    except ImportError as exc:
        raise ConfigurationError(
            "refundry chaos runs from a checkout of the repository with the test extras "
            "installed: it starts the test suite's Redis, PostgreSQL and fake APIs",
            missing=f"tests.support.{module}",
            cause=type(exc).__name__,
        ) from None


class _Group:
    """One ``refundry`` command as its own process group, restartable, logging to a file."""

    def __init__(self, args: list[str], env: dict[str, str], log: Path) -> None:
        self.args, self.env, self.log_path = args, env, log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        log: IO[bytes] = open_private(self.log_path, "ab")
        with log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "workers.cli", *self.args],
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL the whole group: nothing acknowledged, nothing flushed."""
        if self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()
        self.proc = None

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after 30 s."""
        if self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.kill()
        self.proc = None


class Stack:
    """The servers and processes of one chaos run, in ``home``; :meth:`close` stops all."""

    def __init__(self, home: Path, *, run: str, workers: int, threads: int) -> None:
        self.home, self.run = home, run
        self.home.mkdir(parents=True, exist_ok=True)
        redis_server = _support("redis_server")
        postgres_server = _support("postgres_server")
        self._fake_stripe = _support("fake_stripe")
        self._status = _support("fake_status_apis")
        self._scripted = _support("scripted_http")
        self.redis = redis_server.RedisServer()
        self.postgres = postgres_server.PostgresServer()
        self.stripe: Any = None
        self.kling: Any = None
        self.web: _Group | None = None
        self.scheduler: _Group | None = None
        self.workers: list[_Group] = []
        self._worker_count, self._threads = workers, threads
        self.env: dict[str, str] = {}
        self.web_url = ""

    # -- lifecycle -----------------------------------------------------------------------

    def start(self, settings: dict[str, str]) -> None:
        """Start every server and process; ``settings`` are the run's own variables."""
        self.redis.start()
        self.postgres.start()
        self.stripe = self._fake_stripe.FakeStripe().start()
        self.stripe.add_price(PACK_PRICE, PACK_AMOUNT)
        self.stripe_api_version: str = self._fake_stripe.API_VERSION
        self.kling = self._status.kling_api()
        self.kling.start()
        inherited = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith("REFUNDRY_") and k not in ("DATABASE_URL", "REDIS_URL")
        }
        self.env = inherited | {
            "REDIS_URL": self.redis.url,
            "DATABASE_URL": self.postgres.create_database(),
            "REFUNDRY_HOME": str(self.home),
            "STRIPE_API_KEY": STRIPE_KEY,
            "STRIPE_API_BASE": self.stripe.url,
            "STRIPE_WEBHOOK_SECRET": STRIPE_SECRET,
            "REFUNDRY_PACKS": json.dumps({PACK_PRICE: PACK_CREDITS}),
            "KLING_WEBHOOK_SECRET": KLING_SECRET,
            "KLING_ACCESS_KEY": KLING_ACCESS,
            "KLING_SECRET_KEY": KLING_KEY,
            "KLING_API_BASE": self.kling.url,
            "FAL_JWKS_URL": "off",
            **settings,
        }
        os.environ.update(self.env)  # this process reports through workers.client too
        migrate = subprocess.run(
            [sys.executable, "-m", "workers.cli", "ledger", "migrate"],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if migrate.returncode != 0:
            raise RuntimeError(f"refundry ledger migrate failed: {migrate.stderr.strip()}")
        port = _free_port()
        self.web_url = f"http://127.0.0.1:{port}"
        self.web = _Group(
            ["web", "--host", "127.0.0.1", "--port", str(port)], self.env, self.home / "web.log"
        )
        self.web.start()
        self.scheduler = _Group(["scheduler"], self.env, self.home / "scheduler.log")
        self.scheduler.start()
        for n in range(self._worker_count):
            group = _Group(
                ["worker", "-p", "1", "-t", str(self._threads)],
                self.env,
                self.home / f"worker-{n}.log",
            )
            group.start()
            self.workers.append(group)
        self._wait_for_web()

    def _wait_for_web(self, timeout_s: float = 90.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.web is None or not self.web.alive:
                raise RuntimeError(f"refundry web exited; see {self.home / 'web.log'}")
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{self.web_url}/healthz", timeout=2).status_code == 200:
                    return
            time.sleep(0.2)  # polling a bounded condition
        raise TimeoutError(f"refundry web did not answer within {timeout_s:g} s")

    def close(self) -> None:
        for group in [*self.workers, self.scheduler, self.web]:
            if group is not None:
                group.stop()
        for server in (self.stripe, self.kling):
            if server is not None:
                with contextlib.suppress(Exception):
                    server.close()
        with contextlib.suppress(Exception):
            self.redis.close()
        with contextlib.suppress(Exception):
            self.postgres.close()

    # -- faults --------------------------------------------------------------------------

    def kill_worker(self, n: int) -> None:
        """SIGKILL worker group ``n`` (all its processes), then start it again."""
        group = self.workers[n % len(self.workers)]
        group.kill()
        group.start()

    def restart_redis(self, hard: bool) -> None:
        """Stop Redis (SIGKILL when ``hard``: what the AOF did not flush is lost)."""
        if hard:
            self.redis.kill()
        else:
            self.redis.stop()

    def start_redis(self) -> None:
        """Start Redis again; on a loaded machine replaying a long AOF takes a while."""
        self.redis.start(timeout=_RESTART_TIMEOUT_S)

    def stop_postgres(self, hard: bool) -> None:
        """Stop PostgreSQL (a crash, SIGKILL, when ``hard``; else a fast shutdown)."""
        if hard:
            self.postgres.kill()
        else:
            self.postgres.stop()

    def start_postgres(self) -> None:
        """Start PostgreSQL again (crash recovery after a SIGKILL)."""
        self.postgres.start(timeout=_RESTART_TIMEOUT_S)

    def processes_alive(self) -> bool:
        groups = [*self.workers, self.scheduler, self.web]
        return all(g is not None and g.alive for g in groups)


def _free_port() -> int:
    processes = _support("processes")
    port: int = processes.free_port()
    return port

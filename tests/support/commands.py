"""The ``refundry`` command as the tests run it: one-shot commands to completion
(``refundry``), long-running ones as process groups stopped at the end of a test
(``RefundryProcess``, ``WorkerProcesses``), and the environment they run in (``clean_env``).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

__all__ = [
    "REFUNDRY",
    "RefundryProcess",
    "WorkerProcesses",
    "assert_check_ok",
    "clean_env",
    "redis_servers_under",
    "refundry",
]

REFUNDRY = Path(sys.executable).parent / "refundry"

# Variables the command reads; none may leak in from the environment running the tests.
_OWN_VARIABLES = ("DATABASE_URL", "REDIS_URL", "BROKER_URL")


def clean_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """The inherited environment without any Refundry setting, pointed into ``tmp_path``."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith("REFUNDRY_") and name not in _OWN_VARIABLES
    }
    home = tmp_path / "home"
    env["REFUNDRY_HOME"] = str(home)
    env["DATABASE_URL"] = f"sqlite:///{tmp_path / 'ledger.sqlite3'}"
    env.update(extra)
    return env


def refundry(
    env: dict[str, str],
    *args: str,
    stdin: str | None = None,
    timeout: float = 60,
    cwd: Path | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run the installed command to completion; stdout and stderr captured as text."""
    return subprocess.run(
        [str(REFUNDRY), *args],
        env=env,
        input=stdin,
        stdin=None if stdin is not None else subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        cwd=cwd,
    )


class RefundryProcess:
    """A ``refundry`` command as a real process group, stopped at the end of the test."""

    def __init__(self, env: dict[str, str], log: Path, *command: str) -> None:
        self.env = os.environ | env
        self.log = log
        self.command = command
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, *extra: str) -> None:
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "workers.cli", *self.command, *extra],
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )

    def kill(self) -> None:
        """SIGKILL the whole process group: no shutdown hook, no ack, nothing flushed."""
        assert self.proc is not None
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()
        self.proc = None

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.proc = None


class WorkerProcesses(RefundryProcess):
    """``refundry worker``."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        super().__init__(env, log, "worker")

    def start(self, *extra: str, processes: int = 2, threads: int = 4) -> None:
        super().start("-p", str(processes), "-t", str(threads), *extra)


def assert_check_ok(env: dict[str, str]) -> None:
    """``refundry ledger check`` exits 0 and prints ``ok``."""
    done = refundry(env, "ledger", "check")
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip() == "ok"


def redis_servers_under(directory: Path) -> list[int]:
    """Pids of live redis-server processes working in ``directory`` (their ``--dir``).

    redis-server rewrites its command line into a process title, so it is found through its
    working directory, which ``--dir`` sets.
    """
    target = directory.resolve()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cwd = (entry / "cwd").resolve(strict=True)
            comm = (entry / "comm").read_text().strip()
            state = (entry / "stat").read_text().rpartition(")")[2].split()[0]
        except OSError:
            continue
        if cwd == target and "redis" in comm and state not in ("Z", "X"):
            found.append(int(entry.name))
    return found

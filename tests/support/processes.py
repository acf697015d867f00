"""Process and port helpers shared by the test servers (no pytest inside)."""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import socket
from pathlib import Path
from typing import Protocol

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

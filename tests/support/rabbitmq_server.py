"""A real RabbitMQ node for the test session: Debian's ``rabbitmq-server`` started as its own
user-level node on free loopback ports, its data and logs in a temp dir.

Nothing is shared with a system RabbitMQ: its own node name, AMQP port
(``RABBITMQ_NODE_PORT``), distribution port (``RABBITMQ_DIST_PORT``) and epmd port
(``ERL_EPMD_PORT``), its own Erlang cookie (``HOME``), no plugins. Each test gets a fresh
virtual host (:meth:`RabbitMQServer.fresh_url`), as each Redis test gets a flushed server.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from tests.support.processes import _LIVE, LOOPBACK, ServerStartError, _log_section, free_port
from tests.support.waiting import wait_until

__all__ = ["RABBITMQ_BIN", "RabbitMQServer"]

RABBITMQ_BIN = Path("/usr/lib/rabbitmq/bin")
"""Debian's ``rabbitmq-server`` package puts the node's scripts here (``/usr/sbin``'s
wrappers switch to the ``rabbitmq`` user; these run as whoever calls them)."""


class RabbitMQServer:
    """A rabbitmq-server child process on free loopback ports."""

    def __init__(self, bin_dir: Path = RABBITMQ_BIN) -> None:
        self.server = bin_dir / "rabbitmq-server"
        self.ctl = bin_dir / "rabbitmqctl"
        if not (os.access(self.server, os.X_OK) and os.access(self.ctl, os.X_OK)):
            raise ServerStartError(
                f"no {self.server}: install Debian's rabbitmq-server package (make test does)"
            )
        self.port = free_port()
        self.epmd_port = free_port()
        self.dist_port = free_port()
        self.directory = Path(tempfile.mkdtemp(prefix="refundry-rabbitmq-"))
        self.node = f"refundry{self.port}@localhost"
        self.log_path = self.directory / "rabbitmq.out"
        self.startup_seconds: float | None = None
        self._vhosts = 0
        self._process: subprocess.Popen[bytes] | None = None
        (self.directory / "enabled_plugins").write_text("[].\n")
        (self.directory / "rabbitmq.conf").write_text(
            f"listeners.tcp.default = {LOOPBACK}:{self.port}\n"
        )
        _LIVE.append(self)

    @property
    def env(self) -> dict[str, str]:
        d = self.directory
        return os.environ | {
            "HOME": str(d),  # the node's own Erlang cookie
            "RABBITMQ_NODENAME": self.node,
            "RABBITMQ_NODE_IP_ADDRESS": LOOPBACK,
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "ERL_EPMD_PORT": str(self.epmd_port),
            "ERL_EPMD_ADDRESS": LOOPBACK,
            "RABBITMQ_MNESIA_BASE": str(d / "mnesia"),
            "RABBITMQ_LOG_BASE": str(d / "log"),
            "RABBITMQ_PID_FILE": str(d / "rabbitmq.pid"),
            "RABBITMQ_CONFIG_FILE": str(d / "rabbitmq.conf"),
            "RABBITMQ_ADVANCED_CONFIG_FILE": str(d / "advanced.config"),
            "RABBITMQ_CONF_ENV_FILE": str(d / "rabbitmq-env.conf"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(d / "enabled_plugins"),
        }

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def url(self, vhost: str = "/") -> str:
        encoded = vhost.replace("/", "%2F")
        return f"amqp://guest:guest@{LOOPBACK}:{self.port}/{encoded}"

    def ctl_run(self, *args: str, timeout: float = 30.0) -> str:
        """``rabbitmqctl -n <node> args…``'s output; ``ServerStartError`` when it fails."""
        command = [str(self.ctl), "-n", self.node, *args]
        done = subprocess.run(
            command, env=self.env, capture_output=True, text=True, timeout=timeout, check=False
        )
        if done.returncode != 0:
            raise ServerStartError(
                f"{shlex.join(command)} exited {done.returncode}: {done.stderr[-2000:]}"
            )
        return done.stdout

    def start(self, timeout: float = 60.0) -> None:
        """Start the node; no-op when it runs. ``ServerStartError`` when it does not
        accept AMQP connections within ``timeout``."""
        if self.running:
            return
        began = time.monotonic()
        try:
            with self.log_path.open("ab") as log:
                self._process = subprocess.Popen(
                    [str(self.server)],
                    env=self.env,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    cwd=self.directory,
                    start_new_session=True,
                )
        except OSError as exc:
            raise ServerStartError(f"cannot run {self.server}: {exc}") from exc
        try:
            wait_until(self._started, timeout=timeout, interval=0.5)
        except (AssertionError, ServerStartError) as exc:
            self.kill()
            raise ServerStartError(
                f"rabbitmq-server on {LOOPBACK}:{self.port} did not start within {timeout:g} s "
                f"({exc})\n{_log_section(self.log_path)}"
            ) from None
        self.startup_seconds = time.monotonic() - began

    def _started(self) -> bool:
        assert self._process is not None
        code = self._process.poll()
        if code is not None:
            raise ServerStartError(f"rabbitmq-server exited with code {code}")
        try:
            self.ctl_run("await_startup", "--timeout", "5", timeout=15)
        except (ServerStartError, subprocess.TimeoutExpired):
            return False
        return True

    def fresh_url(self) -> str:
        """The URL of a new, empty virtual host that ``guest`` may use."""
        self._vhosts += 1
        vhost = f"test{self._vhosts}"
        self.ctl_run("add_vhost", vhost)
        self.ctl_run("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
        return self.url(vhost)

    def messages(self, vhost: str, column: str = "messages") -> dict[str, int]:
        """Queue name → its messages, ready and unacknowledged (or ``column``:
        ``messages_unacknowledged``…), in ``vhost``."""
        out = self.ctl_run("list_queues", "-q", "--no-table-headers", "-p", vhost, "name", column)
        counts: dict[str, int] = {}
        for line in out.splitlines():
            name, _, count = line.rpartition("\t")
            if name:
                counts[name] = int(count)
        return counts

    def stop(self, timeout: float = 30.0) -> None:
        """Stop the node gracefully; no-op when stopped."""
        process = self._process
        if process is None:
            return
        if process.poll() is None:
            with contextlib.suppress(ServerStartError, subprocess.TimeoutExpired):
                self.ctl_run("stop", timeout=timeout)
            try:
                process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        self._process = None

    def kill(self) -> None:
        """SIGKILL the node's process group."""
        process = self._process
        if process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, 9)
        process.wait(timeout=10)
        self._process = None

    def close(self) -> None:
        """Stop for good, end its epmd, delete the directory (session teardown)."""
        try:
            self.stop()
        finally:
            self.kill()
            epmd = shutil.which("epmd") or "/usr/lib/erlang/bin/epmd"
            with contextlib.suppress(OSError, subprocess.TimeoutExpired):
                subprocess.run(
                    [epmd, "-port", str(self.epmd_port), "-kill"],
                    env=self.env,
                    capture_output=True,
                    timeout=10,
                    check=False,
                )
            shutil.rmtree(self.directory, ignore_errors=True)
            with contextlib.suppress(ValueError):
                _LIVE.remove(self)

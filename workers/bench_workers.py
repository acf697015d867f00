"""Worker process groups for ``refundry bench``: started, watched for memory, stopped.

A group is one dramatiq command (``refundry worker``, or dramatiq on the bench's own actors)
with its forked worker processes. While it runs, a thread samples the resident memory of
every process of the group, so the bench reports the peak of each, not a value at the end.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO

import psutil

from ledger.private_files import open_private

__all__ = ["WorkerGroup", "wait_for"]


class WorkerGroup:
    """``command`` (argv after the interpreter) run with ``env``, its output to ``log_path``."""

    def __init__(self, command: list[str], env: dict[str, str], log_path: Path) -> None:
        self._log: IO[bytes] = open_private(log_path, "ab")
        self._proc = subprocess.Popen(
            [sys.executable, *command],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        self._peaks: dict[int, int] = {}
        self._stop = threading.Event()
        self._sampler = threading.Thread(target=self._sample, name="bench-rss", daemon=True)
        self._sampler.start()

    def _sample(self) -> None:
        while not self._stop.wait(0.25):
            self.sample_once()

    def sample_once(self) -> None:
        """Record the resident memory of every process of the group now."""
        try:
            root = psutil.Process(self._proc.pid)
            procs = [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return
        for proc in procs:
            try:
                rss = int(proc.memory_info().rss)
            except psutil.NoSuchProcess:
                continue
            self._peaks[proc.pid] = max(rss, self._peaks.get(proc.pid, 0))

    @property
    def alive(self) -> bool:
        return self._proc.poll() is None

    def peak_rss_mb(self) -> float:
        """The highest resident memory any one process of the group reached, in MiB."""
        self.sample_once()
        return round(max(self._peaks.values(), default=0) / 2**20, 1)

    def stop(self) -> None:
        """SIGTERM (dramatiq finishes what it holds), SIGKILL after 60 s."""
        self._stop.set()
        if self._proc.poll() is None:
            self._proc.send_signal(signal.SIGTERM)
            try:
                self._proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._log.close()


def wait_for(
    done: Callable[[], bool],
    *,
    timeout_s: float,
    what: str,
    alive: Callable[[], bool] = lambda: True,
    interval_s: float = 0.02,
) -> None:
    """Poll ``done`` until it is true; ``TimeoutError`` naming ``what`` after ``timeout_s``,
    ``RuntimeError`` as soon as ``alive`` says the workers exited."""
    deadline = time.monotonic() + timeout_s
    while not done():
        if not alive():
            raise RuntimeError(f"the workers exited while waiting for {what}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not done within {timeout_s:g} s")
        time.sleep(interval_s)

"""The folder of prometheus-client's multiprocess mode for ``refundry web``.

With ``-p N`` the web processes share one port and any of them answers a scrape, so each
process's webhook counts are written to files in this folder
(``PROMETHEUS_MULTIPROC_DIR``) and ``/metrics`` sums them
(https://prometheus.github.io/client_python/multiprocess/). prometheus-client reads the
variable when it is imported: :func:`prepare` runs before the web module is imported, and
the processes uvicorn starts inherit it. This module imports nothing of prometheus-client.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Final

from ledger.private_files import private_folder

__all__ = ["VARIABLE", "prepare"]

VARIABLE: Final = "PROMETHEUS_MULTIPROC_DIR"


def prepare(home: Path) -> Path:
    """``<home>/prometheus``, created 0700 and emptied of an earlier run's files (counters
    restart at zero with the web command, as Prometheus expects of a restart), set as
    ``PROMETHEUS_MULTIPROC_DIR`` for this process and those it starts. One ``refundry web``
    per home folder."""
    folder = private_folder(home / "prometheus")
    os.chmod(folder, 0o700)  # left wider by hand: it holds this host's figures
    for old in folder.glob("*.db"):
        old.unlink()
    os.environ[VARIABLE] = str(folder)
    return folder

"""Files and folders readable by their owner only: the ledger, the embedded Redis's data,
password and log, the demo's and the bench's logs all hold balances, payloads or secrets.

Every folder Refundry creates is 0700, the missing parents of the home folder included,
whichever command creates it first; every file it creates is 0600. Folders that already
exist are left as they are (``REFUNDRY_HOME`` may point into a folder the operator owns);
a file of ours left wider by an older version is narrowed when it is opened again.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import IO, Any

__all__ = ["open_private", "private_folder"]


def private_folder(path: Path) -> Path:
    """Create ``path`` and each missing parent with mode 0700 (``mkdir(parents=True)`` would
    give the parents the umask's mode, usually 0755); returns ``path``."""
    missing = [p for p in (path, *path.parents) if not p.exists()]
    for folder in reversed(missing):
        folder.mkdir(mode=0o700, exist_ok=True)
    return path


def open_private(path: Path, mode: str = "w") -> IO[Any]:
    """Open ``path`` for writing (``w``, ``a``, ``wb`` or ``ab``), creating it, and its
    folders, readable by its owner only."""
    private_folder(path.parent)
    flags = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if "a" in mode else os.O_TRUNC)
    fd = os.open(path, flags, 0o600)
    os.fchmod(fd, 0o600)  # a file left by an older version may be wider
    return os.fdopen(fd, mode)

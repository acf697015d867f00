"""The ``refundry`` command's exit codes: one per kind of outcome, so scripts can tell a
refusal from a missing thing, a bad setting or an outage (README, "Exit codes").

Every ``RefundryError`` that reaches the command line becomes one line on stderr and the
exit code of its kind; nothing else is printed for it (no traceback).
"""

from __future__ import annotations

from typing import Final

from ledger.errors import ConfigurationError, NotFound, RefundryError

__all__ = [
    "CONFIGURATION",
    "NOT_FOUND",
    "OK",
    "REFUSED",
    "UNAVAILABLE",
    "VIOLATIONS",
    "exit_code",
]

OK: Final = 0
VIOLATIONS: Final = 1
"""``ledger check`` found violations (the demo: the ledger did not settle)."""
REFUSED: Final = 2
"""Bad input or usage: an unknown provider or operation, a malformed payload or option."""
NOT_FOUND: Final = 3
"""No ledger at the configured location, no such account, no such dead letter."""
CONFIGURATION: Final = 4
"""A setting cannot be used (``DATABASE_URL`` with another scheme, half a key pair …)."""
UNAVAILABLE: Final = 5
"""The ledger's database, Redis or a provider cannot be reached: the same command may
succeed later."""


def exit_code(exc: RefundryError) -> int:
    """The exit code of ``exc``'s kind: transient errors (not ``permanent``) are
    ``UNAVAILABLE``, other refusals ``REFUSED``."""
    if isinstance(exc, NotFound):
        return NOT_FOUND
    if isinstance(exc, ConfigurationError):
        return CONFIGURATION
    if not exc.permanent:
        return UNAVAILABLE
    return REFUSED

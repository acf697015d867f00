"""The six outcomes a provider result can have, and what each means for the credits."""

from __future__ import annotations

from enum import StrEnum

__all__ = ["REFUNDABLE", "TERMINAL", "Outcome"]


class Outcome(StrEnum):
    SUCCEEDED = "succeeded"
    """Terminal, a usable output is present: the credits are kept."""
    FAILED = "failed"
    """Terminal, the provider reported an error: refunded."""
    EMPTY_SUCCESS = "empty_success"
    """The provider said done but delivered nothing usable: refunded."""
    MODERATED = "moderated"
    """Rejected by a content policy: refunded ("not charged")."""
    CANCELLED = "cancelled"
    """Cancelled upstream before any output: refunded by default."""
    PENDING = "pending"
    """Not terminal: nothing changes, the sweeper watches the deadline."""


TERMINAL = frozenset(o for o in Outcome if o is not Outcome.PENDING)
REFUNDABLE = frozenset(
    {Outcome.FAILED, Outcome.EMPTY_SUCCESS, Outcome.MODERATED, Outcome.CANCELLED}
)

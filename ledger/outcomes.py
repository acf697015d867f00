"""The six outcomes a provider result can have. Which of them give the credits back is the
refund policy's decision (``handlers.generation.RefundPolicy``), made in that one place."""

from __future__ import annotations

from enum import StrEnum

__all__ = ["TERMINAL", "Outcome"]


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

"""Refundry's exception tree.

Every error that Refundry raises on purpose descends from one root, so that a caller can
catch at the level it cares about and a dead letter's reason is the class name plus the
structured fields (``RefundryError.fields``)::

    RefundryError
    ├── LedgerError                 the ledger refused an operation
    │   ├── InsufficientCredits     a charge would overdraw the balance
    │   ├── ChargeNotFound          no charge is recorded for the generation (yet)
    │   ├── AmountMismatch          a refund whose amount is not the charged amount
    │   ├── IdempotencyConflict     the same key was reused with other inputs
    │   └── ResultForAnotherJob     a result names another job than the generation's charge
    ├── Unclassifiable              a payload that cannot be classified (providers/)
    │   └── UnknownProvider         no adapter for that provider name
    └── ConfigurationError          a setting that cannot be used

``Permanent`` marks the errors that no retry can fix: they are dead-lettered at once.
"""

from __future__ import annotations

from typing import Any, ClassVar

from ledger.redaction import redact_text

__all__ = [
    "AmountMismatch",
    "ChargeNotFound",
    "ConfigurationError",
    "IdempotencyConflict",
    "InsufficientCredits",
    "LedgerError",
    "RefundryError",
    "ResultForAnotherJob",
    "Unclassifiable",
    "UnknownProvider",
]


class RefundryError(Exception):
    """Refundry refused to do something."""

    #: True when retrying the same input can never succeed: dead-letter it at once.
    permanent: ClassVar[bool] = False

    def __init__(self, message: str | None = None, **fields: Any) -> None:
        self.fields: dict[str, Any] = fields
        text = message or (self.__doc__ or self.__class__.__name__).strip().splitlines()[0].rstrip(
            "."
        )
        if fields:
            text = f"{text} ({', '.join(f'{k}={v!r}' for k, v in fields.items())})"
        super().__init__(redact_text(text))

    @property
    def reason(self) -> str:
        """Machine-readable reason: the class name, then the fields (secrets masked)."""
        parts = [self.__class__.__name__, *(f"{k}={v}" for k, v in self.fields.items())]
        return redact_text(" ".join(parts))


class LedgerError(RefundryError):
    """The ledger refused an operation."""


class InsufficientCredits(LedgerError):
    """The charge would overdraw the account's balance."""

    permanent = True


class ChargeNotFound(LedgerError):
    """No charge is recorded for this generation."""


class AmountMismatch(LedgerError):
    """A refund must equal the charged amount."""

    permanent = True


class IdempotencyConflict(LedgerError):
    """The idempotency key was already used with different inputs."""

    permanent = True


class ResultForAnotherJob(LedgerError):
    """The result names another provider job than the one charged for the generation."""

    permanent = True


class Unclassifiable(RefundryError):
    """The payload cannot be classified; it is never guessed at."""

    permanent = True


class UnknownProvider(Unclassifiable):
    """No provider adapter has this name."""


class ConfigurationError(RefundryError):
    """A setting cannot be used."""

    permanent = True

"""How long a generation may stay without a terminal outcome.

Two times per charge, counted from the charge: ``poll_after`` (the sweeper starts asking
the provider's status API) and ``hard`` (the provider never answered with a result: the
charge is refunded as a system failure). Each pair is a positive hard deadline after its
poll time; that the hard deadline, a lease, a sweep interval and a poll budget stay inside
the configured refund promise (``REFUNDRY_REFUND_SLA_MS``) is checked with every other
budget, in one place (``workers.budgets``).

Defaults follow the providers' documented typical durations (``research/providers.md``):
images take seconds, music a minute or two, videos a few minutes (Kling queues can hold a
task for tens of minutes), LoRA training up to half an hour. Override per operation or per
``provider:operation`` with ``REFUNDRY_DEADLINES``, a JSON object of
``{"kling:video": [poll_after_s, hard_s], "music": [..]}``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from handlers.setting_json import json_object_setting, whole_number_setting
from ledger.errors import ConfigurationError
from providers.base import MUSIC_OPERATIONS

__all__ = ["DEFAULT_DEADLINES", "Deadline", "DeadlinePolicy"]

MINUTE = 60_000
LONGEST_S = 7 * 24 * 3600
"""No deadline is read past a week (the longest promise the settings accept); the bound that
matters is the configured promise, checked in ``workers.budgets``."""


@dataclass(frozen=True, slots=True)
class Deadline:
    poll_after_ms: int
    hard_ms: int


_MUSIC = Deadline(3 * MINUTE, 30 * MINUTE)
DEFAULT_DEADLINES: dict[str, Deadline] = {
    "image": Deadline(2 * MINUTE, 20 * MINUTE),
    "video": Deadline(10 * MINUTE, 45 * MINUTE),
    "training": Deadline(30 * MINUTE, 50 * MINUTE),
    **dict.fromkeys(MUSIC_OPERATIONS, _MUSIC),
}
FALLBACK = Deadline(10 * MINUTE, 45 * MINUTE)


@dataclass(frozen=True, slots=True)
class DeadlinePolicy:
    overrides: dict[str, Deadline] = field(default_factory=dict)

    def for_generation(self, provider: str, operation: str) -> Deadline:
        return (
            self.overrides.get(f"{provider}:{operation}")
            or self.overrides.get(operation)
            or DEFAULT_DEADLINES.get(operation)
            or FALLBACK
        )

    def latest_hard_ms(self) -> int:
        """The latest hard deadline any generation can have under this policy."""
        every = [*DEFAULT_DEADLINES.values(), FALLBACK, *self.overrides.values()]
        return max(d.hard_ms for d in every)

    @classmethod
    def from_json(cls, text: str) -> DeadlinePolicy:
        """Parse ``REFUNDRY_DEADLINES``: a JSON object of ``[poll_after_s, hard_s]`` pairs of
        whole seconds, ``0 <= poll_after_s < hard_s`` (a hard deadline is positive and comes
        after the first poll); refuses anything else with ``ConfigurationError`` naming the
        variable and the key. Whether the deadlines keep the refund promise is
        ``workers.budgets.Budgets.check``'s decision, against the configured promise."""
        if not text.strip():
            return cls()
        overrides: dict[str, Deadline] = {}
        for key, pair in json_object_setting(text, variable="REFUNDRY_DEADLINES").items():
            if not isinstance(pair, list) or len(pair) != 2:
                raise ConfigurationError(
                    "not a [poll_after_s, hard_s] pair", variable="REFUNDRY_DEADLINES", key=key
                )
            poll_s, hard_s = (
                whole_number_setting(
                    seconds,
                    variable="REFUNDRY_DEADLINES",
                    what="a deadline",
                    low=0,
                    high=LONGEST_S,
                    key=key,
                )
                for seconds in pair
            )
            if not poll_s < hard_s:
                raise ConfigurationError(
                    "the hard deadline must come after the poll time (poll_after_s < hard_s)",
                    variable="REFUNDRY_DEADLINES",
                    key=key,
                )
            overrides[key] = Deadline(poll_s * 1000, hard_s * 1000)
        return cls(overrides)

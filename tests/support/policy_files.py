"""A refund policy file of two versions, as the policy tests write it, and the moments
its versions take effect."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Final

from handlers.policy_file import parse_policy, shipped_policy
from handlers.policy_rules import PolicyBook

__all__ = ["JAN_MS", "MAR_MS", "TWO_VERSIONS", "changed_at"]

JAN_MS: Final = 1_767_225_600_000
"""2026-01-01T00:00:00Z, when version ``2026-01`` takes effect (ms since the epoch)."""
MAR_MS: Final = 1_772_323_200_000
"""2026-03-01T00:00:00Z, when version ``2026-03`` takes effect."""

TWO_VERSIONS: Final = """\
[[version]]
name = "2026-01"
effective = 2026-01-01T00:00:00Z
refund_outcomes = ["failed", "empty_success", "moderated", "cancelled"]
unlanded_pack_action = "refund"

[version.packs]
price_small = 100

[[version]]
name = "2026-03"
effective = 2026-03-01T00:00:00Z
refund_outcomes = ["failed", "empty_success"]
unlanded_pack_action = "complete"

[version.packs]
price_large = 1000
"""
"""``2026-01`` refunds moderated generations and refunds unlanded packs; ``2026-03`` (which
states only what changed) refunds neither moderation nor unlanded packs, and adds a pack."""


def changed_at(at_ms: int) -> PolicyBook:
    """A policy whose version ``before`` (in force from 1970) refunds moderated generations
    and unlanded packs, and whose version ``after``, in force from ``at_ms`` (ms since the
    epoch), refunds neither; read as a file of that text is."""
    when = datetime.fromtimestamp(at_ms / 1000, tz=UTC).isoformat(timespec="milliseconds")
    text = f"""\
[[version]]
name = "before"
effective = 1970-01-01T00:00:00Z
refund_outcomes = ["failed", "empty_success", "moderated", "cancelled"]
unlanded_pack_action = "refund"

[[version]]
name = "after"
effective = {when}
refund_outcomes = ["failed", "empty_success", "cancelled"]
unlanded_pack_action = "complete"
"""
    return parse_policy(text, source="policy.toml", base=shipped_policy().versions[-1].rules)

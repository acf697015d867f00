"""What a number of credits may be: the one rule every amount the ledger stores obeys.

Credits are whole numbers. A float is refused even when it is integral (``2.0``): a caller
that computes credits with floats has a rounding bug somewhere, and the ledger will not hide
it. ``bool`` is refused although Python counts it as an ``int``.

``MAX_CREDITS`` (10**12) bounds one charge, grant or refund. It leaves a signed 64-bit
balance (PostgreSQL ``BIGINT``, SQLite ``INTEGER``; at most about 9.2 * 10**18) the headroom
of over nine million maximal grants, so no sum the ledger computes can overflow. The
schema enforces the same bound (migration ``0006_whole_credits``).
"""

from __future__ import annotations

import math
from typing import Final

from ledger.errors import InvalidAmount

__all__ = ["MAX_CREDITS", "whole_credits"]

MAX_CREDITS: Final[int] = 10**12


def whole_credits(value: object, *, field: str = "credits") -> int:
    """``value`` as a positive whole number of credits, at most ``MAX_CREDITS``.

    Raises ``InvalidAmount`` naming ``field`` for anything else: a float, a bool, a string,
    zero, a negative number or one above the maximum.
    """
    if isinstance(value, bool) or not isinstance(value, int):
        shown = {"value": value} if isinstance(value, float) else {}
        raise InvalidAmount(
            "credits must be a whole number (int)", field=field, type=type(value).__name__, **shown
        )
    if value <= 0:
        raise InvalidAmount("credits must be positive", field=field, value=_shown(value))
    if value > MAX_CREDITS:
        raise InvalidAmount(
            "credits above the maximum", field=field, value=_shown(value), maximum=MAX_CREDITS
        )
    return int(value)


def _shown(value: int) -> int | str:
    """The refused amount as an error may repeat it: the number, or about how many digits it
    has when it is too long to print (Python refuses to print one of over 4300 digits)."""
    if value.bit_length() <= 64:
        return int(value)
    return f"<about {int(value.bit_length() * math.log10(2)) + 1} digits>"

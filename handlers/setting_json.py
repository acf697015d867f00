"""Settings written as JSON (``REFUNDRY_PACKS``, ``REFUNDRY_DEADLINES``): read strictly, and
refused by name with ``ConfigurationError`` when they cannot be used, so that a typo never
becomes a silently different number (``2.5`` credits read as 2, ``true`` as 1).

Limits: at most ``MAX_SETTING_CHARS`` characters, strict JSON (no ``NaN`` or ``Infinity``;
a number that overflows to infinity is not a whole number), nesting the parser can take
(deeper is refused, never a ``RecursionError``)."""

from __future__ import annotations

import json
from typing import Any, Final

from ledger.errors import ConfigurationError

__all__ = ["MAX_SETTING_CHARS", "json_object_setting", "whole_number_setting"]

MAX_SETTING_CHARS: Final = 65_536


def json_object_setting(text: str, *, variable: str) -> dict[str, Any]:
    """``text`` as a JSON object; ``ConfigurationError`` naming ``variable`` for anything
    else (too long, not JSON, ``NaN``, too deep, not an object)."""
    if len(text) > MAX_SETTING_CHARS:
        raise ConfigurationError(
            f"longer than {MAX_SETTING_CHARS} characters", variable=variable, chars=len(text)
        )
    try:
        value = json.loads(text, parse_constant=_refuse_constant)
    except (ValueError, RecursionError):  # JSONDecodeError, NaN, over 4300 digits, depth
        raise ConfigurationError("not strict JSON", variable=variable) from None
    if not isinstance(value, dict):
        raise ConfigurationError("not a JSON object", variable=variable)
    return value


def whole_number_setting(
    value: object, *, variable: str, what: str, low: int, high: int, key: str
) -> int:
    """``value`` when it is a whole number (an int, never a bool or float) from ``low`` to
    ``high``; else ``ConfigurationError`` naming ``variable`` and the ``key`` it was under."""
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ConfigurationError(
            f"{what} must be a whole number from {low} to {high}", variable=variable, key=key
        )
    return value


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")

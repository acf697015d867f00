"""Masks secrets before anything reaches a log, Sentry or the dead-letter queue.

Hand-written on purpose: the rule is ours (which keys are secret, how URLs carry signed
tokens), and it is a dozen lines.
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["MASK", "redact"]

MASK = "[redacted]"
_SECRET_KEY = re.compile(
    r"(authorization|api[_-]?key|secret|token|password|signature|cookie|credential)", re.I
)
_URL_QUERY = re.compile(r"(https?://[^\s?\"']+)\?[^\s\"']*")


def redact(value: Any) -> Any:
    """A copy of ``value`` with secret-named keys masked and URL query strings removed
    (presigned artifact URLs carry their credentials in the query)."""
    if isinstance(value, dict):
        return {
            k: MASK if isinstance(k, str) and _SECRET_KEY.search(k) else redact(v)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [redact(v) for v in value]
    if isinstance(value, str):
        return _URL_QUERY.sub(rf"\1?{MASK}", value)
    return value

"""MiniMax music generation (``POST /v1/music_generation``): synchronous, errors in HTTP 200.

Shape (platform.minimax.io error codes; TokenHub music reference): ``{"data": {"status", "audio"},
"base_resp": {"status_code", "status_msg"}, "trace_id"}``. ``base_resp.status_code`` ≠ 0 is a
business error whatever the HTTP status; with 0, ``data.status`` 1 is a stream chunk (still
synthesizing) and 2 is done, when ``data.audio`` must hold a URL or hex-encoded audio.
There is no job: ``trace_id`` names the HTTP request, so no ``provider_job_id`` is reported.

The sensitive-content codes 1026 (input) and 1027 (output) are the ones seen in practice; any
``status_msg`` that speaks of sensitive content is treated the same way.
"""

from __future__ import annotations

import re
from typing import Final

from ledger.outcomes import Outcome
from providers.artifacts import is_hex_audio, url_of
from providers.base import Classification
from providers.common import (
    Adapter,
    Payload,
    as_int,
    done,
    lookup,
    refuse,
    short,
    status_in,
    text,
)

__all__ = ["ADAPTER", "NAME"]

NAME: Final = "minimax"

STATUS: Final[dict[int, Outcome]] = {
    1: Outcome.PENDING,  # stream chunk: still synthesizing
    2: Outcome.SUCCEEDED,  # done: only with audio
}

ERROR_CODES: Final[dict[int, Outcome]] = {
    1002: Outcome.PENDING,  # rate limited before anything was generated: retry
    1026: Outcome.MODERATED,  # input flagged as sensitive
    1027: Outcome.MODERATED,  # output flagged as sensitive
}
"""``base_resp.status_code`` values that are not plain failures; every other non-zero code
(1000 unknown, 1001 timeout, 1004 auth, 1008 balance, 1024 internal, 2013 params …) is failed."""

SENSITIVE_TEXT: Final = re.compile(r"sensitive", re.IGNORECASE)


def _rules(payload: Payload, operation: str | None) -> Classification:
    raw_code = lookup(payload, "base_resp.status_code")
    code = as_int(raw_code)
    if code is None:
        if raw_code is None:
            raise refuse("missing status", NAME, field="base_resp.status_code")
        raise refuse("unknown status", NAME, field="base_resp.status_code", value=short(raw_code))
    if code != 0:
        message = text(lookup(payload, "base_resp.status_msg"))
        outcome = ERROR_CODES.get(code, Outcome.FAILED)
        if outcome is Outcome.FAILED and SENSITIVE_TEXT.search(message):
            outcome = Outcome.MODERATED
        return Classification(outcome, f"base_resp.status_code={code} ({short(message, 40)})")
    raw_status = lookup(payload, "data.status")
    if raw_status is None:
        raise refuse("missing status", NAME, field="data.status")
    status = as_int(raw_status)
    if status is None:
        raise refuse("unknown status", NAME, field="data.status", value=short(raw_status))
    outcome = status_in(STATUS, status, NAME, "data.status")
    decided = f"base_resp.status_code=0, data.status={status}"
    if outcome is Outcome.SUCCEEDED:
        audio = lookup(payload, "data.audio")
        found = url_of(audio) or ("hex audio" if is_hex_audio(audio) else None)
        return done(decided, found, "data.audio", None)
    return Classification(outcome, decided)


ADAPTER: Final = Adapter(NAME, _rules)

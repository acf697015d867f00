"""ElevenLabs music and voice cloning: synchronous answers, no job model.

Shapes: errors are ``{"detail": {"status", "message", "data"?}}`` (validation errors may send a
``detail`` list or string instead); a refused prompt or composition plan (copyrighted material)
is ``bad_prompt`` / ``bad_composition_plan`` with a ``prompt_suggestion`` or
``composition_plan_suggestion`` in ``detail.data`` (elevenlabs.io/docs/cookbooks/music/quickstart).
Successes: ``POST /v1/voices/add`` answers ``{"voice_id", "requires_verification"}``; music is
audio bytes, which reach a classifier as ``audio_base64`` (inline audio, as ElevenLabs' JSON
endpoints carry it). A body with neither an error nor a result field is refused.
"""

from __future__ import annotations

from typing import Final

from ledger.outcomes import Outcome
from providers.artifacts import nonempty_text
from providers.base import Classification
from providers.common import Adapter, Payload, items, lookup, mapping, refuse, short, text

__all__ = ["ADAPTER", "NAME"]

NAME: Final = "elevenlabs"

ERROR_STATUS: Final[dict[str, Outcome]] = {
    "bad_prompt": Outcome.MODERATED,
    "bad_composition_plan": Outcome.MODERATED,
    "too_many_concurrent_requests": Outcome.PENDING,  # refused before anything was generated
    "system_busy": Outcome.PENDING,  # refused before anything was generated
}
"""``detail.status`` values that are not plain failures; every other one (``invalid_api_key``,
``quota_exceeded``, …) is failed. A suggestion in ``detail.data`` also means moderated."""

RESULTS: Final[dict[str, tuple[str, ...]]] = {
    "voice_clone": ("voice_id",),
    "music": ("audio_base64",),
}
"""The result field of each operation; another operation (or none) accepts any of them."""

SUGGESTIONS: Final = ("prompt_suggestion", "composition_plan_suggestion")


def _rules(payload: Payload, operation: str | None) -> Classification:
    if "detail" in payload:
        return _error(payload.get("detail"))
    fields = RESULTS.get(operation or "") or tuple(f for fs in RESULTS.values() for f in fs)
    if not any(field in payload for field in (*fields, "requires_verification")):
        raise refuse("missing status", NAME, field="detail.status")
    found = next((field for field in fields if nonempty_text(payload.get(field))), None)
    if found is None:
        reason = f"result without a usable {'|'.join(fields)}"
        return Classification(Outcome.EMPTY_SUCCESS, reason)
    return Classification(Outcome.SUCCEEDED, f"result with {found}")


def _error(detail: object) -> Classification:
    status = lookup(detail, "status")
    if isinstance(status, str) and status:
        outcome = ERROR_STATUS.get(status, Outcome.FAILED)
        data = mapping(lookup(detail, "data")) or {}
        if outcome is Outcome.FAILED and any(data.get(key) for key in SUGGESTIONS):
            outcome = Outcome.MODERATED
        return Classification(outcome, f"detail.status={status!r}")
    if nonempty_text(detail) or items(detail):  # validation errors: a string or a list
        shown = detail if isinstance(detail, str) else text(lookup(items(detail)[0], "msg"))
        return Classification(Outcome.FAILED, f"detail={short(shown, 50)}")
    raise refuse("missing status", NAME, field="detail.status")


ADAPTER: Final = Adapter(NAME, _rules)

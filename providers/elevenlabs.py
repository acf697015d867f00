"""ElevenLabs music, sound effects, speech and voice cloning: synchronous answers and voices.

Shapes (elevenlabs-python, generated from ElevenLabs' API definition;
elevenlabs.io/docs/cookbooks/music/quickstart):

- errors: ``{"detail": {"status", "message", "data"?}}`` (validation errors may send a
  ``detail`` list or string instead); a refused prompt or composition plan (copyrighted
  material) is ``bad_prompt`` / ``bad_composition_plan`` with a ``prompt_suggestion`` or
  ``composition_plan_suggestion`` in ``detail.data``;
- music, sound effects and speech answer audio bytes, which reach a classifier as
  ``audio_base64`` (inline audio, as the ``…/with-timestamps`` speech endpoints send it
  beside ``alignment``);
- instant voice cloning, ``POST /v1/voices/add``: ``{"voice_id", "requires_verification"}``;
  voice design, ``POST /v1/text-to-voice/design``: ``{"previews": [{"audio_base_64",
  "generated_voice_id", "media_type", …}], "text"}`` (elevenlabs-python
  ``VoiceDesignPreviewResponse``), each preview's audio and voice id a delivered design;
  professional cloning, ``POST /v1/voices/pvc``: ``{"voice_id"}``; its training start
  answers ``{"status": "ok"}``;
- a voice, ``GET /v1/voices/{id}``: ``category`` and ``fine_tuning.state``, a map of model id
  to not_started | queued | fine_tuning | fine_tuned | failed | delayed. A professional voice
  is ready when one model is ``fine_tuned``; other voices are ready as they are.

A body with neither an error, a status nor any output or result field is refused.
"""

from __future__ import annotations

from typing import Final

from ledger.outcomes import Outcome
from providers.artifacts import nonempty_text
from providers.base import Classification
from providers.common import Adapter, Payload, items, lookup, mapping, refuse, short, text
from providers.outputs import Field, done, find_output

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

FINE_TUNING_STATE: Final[dict[str, Outcome]] = {
    "not_started": Outcome.PENDING,
    "queued": Outcome.PENDING,
    "fine_tuning": Outcome.PENDING,
    "delayed": Outcome.PENDING,
    "fine_tuned": Outcome.SUCCEEDED,  # the voice_id is the deliverable
    "failed": Outcome.FAILED,
}

AUDIO: Final = ("audio_base64",)
RESULTS: Final[dict[str, tuple[str, ...]]] = {
    "voice_clone": ("voice_id", "previews"),
    "music": AUDIO,
    "speech": AUDIO,
    "sound_effects": AUDIO,
}
"""The result field of each operation, looked at first; then any output in the answer."""

RESULT_KEYS: Final = ("voice_id", "audio_base64", "requires_verification", "alignment", "previews")
"""Keys that make a body a result even when their values are empty."""
SUGGESTIONS: Final = ("prompt_suggestion", "composition_plan_suggestion")


def _rules(payload: Payload, operation: str | None) -> Classification:
    if "detail" in payload:
        return _error(payload.get("detail"))
    if mapping(lookup(payload, "fine_tuning.state")) is not None:
        return _voice(payload)
    if payload.get("status") == "ok" and len(payload) == 1:
        return Classification(Outcome.PENDING, "status='ok': professional voice training started")
    fields = RESULTS.get(operation or "") or tuple(f for fs in RESULTS.values() for f in fs)
    found = find_output(payload, [Field(f) for f in fields], operation=operation)
    if found is None and not any(key in payload for key in RESULT_KEYS):
        raise refuse("missing status", NAME, field="detail.status")
    return done("result", found, "|".join(fields) + " or elsewhere", None)


def _voice(payload: Payload) -> Classification:
    """A voice fetched back: a professional one waits for a fine-tuned model."""
    voice_id = payload.get("voice_id")
    job = voice_id if nonempty_text(voice_id) else None  # never trimmed
    states = {
        model: FINE_TUNING_STATE.get(state) if isinstance(state, str) else None
        for model, state in (mapping(lookup(payload, "fine_tuning.state")) or {}).items()
    }
    if payload.get("category") != "professional" or not states:
        found = find_output(payload, [Field("voice_id")], ids=("voice_id",))
        return done(f"category={short(payload.get('category'))}", found, "voice_id", job)
    decided = next((m for m, o in states.items() if o is Outcome.SUCCEEDED), None)
    if decided is not None:
        found = find_output(payload, [Field("voice_id")], ids=("voice_id",))
        return done(f"fine_tuning.state.{decided}='fine_tuned'", found, "voice_id", job)
    if any(outcome is None for outcome in states.values()):
        unknown = next(m for m, o in states.items() if o is None)
        raise refuse("unknown status", NAME, field=f"fine_tuning.state.{unknown}")
    if all(outcome is Outcome.FAILED for outcome in states.values()):
        messages = mapping(lookup(payload, "fine_tuning.message")) or {}
        message = next((text(m) for m in messages.values() if nonempty_text(m)), "")
        reason = f"fine_tuning.state: every model failed ({short(message or None)})"
        return Classification(Outcome.FAILED, reason, job)
    return Classification(Outcome.PENDING, "fine_tuning.state: training not finished", job)


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

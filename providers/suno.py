"""Suno-style music API (sunoapi.org; kie.ai shares the schema): records, callbacks, errors.

Where the task status sits depends on the endpoint (docs.sunoapi.org, suno-api/*.md):

- music, extend, add-vocals/instrumental and lyrics callbacks: ``data.callbackType`` text |
  first | complete | error, tracks in ``data.data[]``; ``code`` and ``msg`` tell an error's kind;
- record-info polls: ``data.status`` (PENDING … SUCCESS, …_FAILED, SENSITIVE_WORD_ERROR), or
  ``data.successFlag`` for WAV records, output in ``data.response``;
- MIDI callbacks: ``data.state`` complete;
- WAV and stem callbacks, and every error without a task, have no status but ``code``:
  200 is done, anything else is an error. Codes are unusual: 429 means out of credits, while
  405/430 are the rate limits and 455 is maintenance.

Each operation has its own output (:data:`OUTPUTS`): tracks need an mp3 URL (a stream URL is
not final, ``…/None.mp3`` is broken), lyrics need text, 2-stem separation needs both the vocal
and the instrumental URL while a 12-stem split needs at least one stem (missing instruments are
normal), exports need their file. The envelope ``code`` never overrides a task status.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Final

from ledger.outcomes import Outcome
from providers.artifacts import first_url, nonempty_text, url_of
from providers.base import Classification
from providers.common import (
    Adapter,
    Payload,
    as_int,
    done,
    items,
    job_id,
    lookup,
    mapping,
    refuse,
    require_status,
    short,
    status_in,
    text,
)

__all__ = ["ADAPTER", "NAME"]

NAME: Final = "suno"

CALLBACK_TYPES: Final[dict[str, Outcome]] = {
    "text": Outcome.PENDING,  # lyrics written, no audio yet
    "first": Outcome.PENDING,  # first track only, possibly a stream URL
    "complete": Outcome.SUCCEEDED,  # only with the operation's output
    "error": Outcome.FAILED,  # code/msg may say moderated
}

RECORD_STATUS: Final[dict[str, Outcome]] = {
    "PENDING": Outcome.PENDING,
    "TEXT_SUCCESS": Outcome.PENDING,
    "FIRST_SUCCESS": Outcome.PENDING,
    "SUCCESS": Outcome.SUCCEEDED,
    "CALLBACK_EXCEPTION": Outcome.SUCCEEDED,  # only the callback to us failed: output decides
    "CREATE_TASK_FAILED": Outcome.FAILED,
    "GENERATE_AUDIO_FAILED": Outcome.FAILED,
    "GENERATE_LYRICS_FAILED": Outcome.FAILED,
    "GENERATE_WAV_FAILED": Outcome.FAILED,
    "SENSITIVE_WORD_ERROR": Outcome.MODERATED,
}

MIDI_STATE: Final[dict[str, Outcome]] = {"complete": Outcome.SUCCEEDED}

CODES: Final[dict[int, Outcome]] = {
    200: Outcome.SUCCEEDED,  # done: only with the operation's output
    405: Outcome.PENDING,  # rate limit exceeded, no task yet
    430: Outcome.PENDING,  # call frequency too high, no task yet
    455: Outcome.PENDING,  # maintenance, no task yet
    429: Outcome.FAILED,  # insufficient credits (not a rate limit)
}
"""Codes of bodies without a task status; any other code from 400 up is an error (moderated
when ``msg`` says so: 400 "content violation", 413 "matches existing work of art")."""

MODERATION_TEXT: Final = re.compile(
    r"violat|sensitive|prohibited|copyright|existing work|inappropriate|moderat", re.IGNORECASE
)

TRACK_URLS: Final = ("audio_url", "audioUrl", "source_audio_url", "sourceAudioUrl")
TWO_STEMS: Final = ("vocal_url", "instrumental_url")


def _containers(payload: Payload) -> list[Payload]:
    """Where outputs sit: ``data`` (callbacks) and ``data.response`` (record-info)."""
    found = [mapping(payload.get("data")), mapping(lookup(payload, "data.response"))]
    return [container for container in found if container is not None]


def _tracks(place: Payload) -> str | None:
    return first_url([*items(place.get("data")), *items(place.get("sunoData"))], TRACK_URLS)


def _lyrics(place: Payload) -> str | None:
    for entry in [*items(place.get("data")), *items(place.get("lyricsData"))]:
        lyric = mapping(entry) or {}
        if nonempty_text(lyric.get("text")) and lyric.get("status") != "failed":
            return short(lyric.get("title") or "lyrics")
    return None


def _stems(place: Payload) -> str | None:
    for key in ("vocal_removal_info", "vocal_separation_info"):
        info = mapping(place.get(key)) or {}
        stems = {k for k in info if isinstance(k, str) and k.endswith("_url") and k != "origin_url"}
        if stems and not stems <= set(TWO_STEMS):  # split_stem: any one stem will do
            found = first_url(info[k] for k in sorted(stems))
        else:  # separate_vocal: both halves or nothing
            found = url_of(info.get("vocal_url")) and url_of(info.get("instrumental_url"))
        if found:
            return found
    return None


def _wav(place: Payload) -> str | None:
    return url_of(place.get("audioWavUrl")) or url_of(place.get("audio_wav_url"))


def _midi(place: Payload) -> str | None:
    for instrument in items(place.get("instruments")):
        if items(lookup(instrument, "notes")):
            return short(lookup(instrument, "name"))
    return None


OUTPUTS: Final[dict[str, tuple[str, Callable[[Payload], str | None]]]] = {
    "music": ("track audio_url", _tracks),
    "extend": ("track audio_url", _tracks),
    "add_vocals": ("track audio_url", _tracks),
    "add_instrumental": ("track audio_url", _tracks),
    "lyrics": ("lyrics text", _lyrics),
    "stems": ("stem URLs", _stems),
    "wav_export": ("audioWavUrl", _wav),
    "midi_export": ("instruments[].notes", _midi),
}
"""Each operation's output; another operation (or none) accepts any of them."""


STATUS_FIELDS: Final[tuple[tuple[str, dict[str, Outcome], str, str], ...]] = (
    ("data.callbackType", CALLBACK_TYPES, "code", "msg"),
    ("data.status", RECORD_STATUS, "data.errorCode", "data.errorMessage"),
    ("data.successFlag", RECORD_STATUS, "data.errorCode", "data.errorMessage"),
    ("data.state", MIDI_STATE, "code", "msg"),
)
"""Where a body keeps its task status, and the code and message that explain an error."""


def _rules(payload: Payload, operation: str | None) -> Classification:
    job = job_id(
        payload, "data.taskId", "data.task_id", "task_id", "taskId", "data.response.taskId"
    )
    data = mapping(payload.get("data")) or {}
    where = next((e for e in STATUS_FIELDS if e[0].removeprefix("data.") in data), None)
    if where is None:
        return _by_code(payload, operation, text(payload.get("msg")), job)
    field, table, code_path, message_path = where
    status = require_status(payload, field, NAME)
    decided = f"{field}={status!r}"
    outcome = status_in(table, status, NAME, field)
    if outcome is Outcome.FAILED:
        code = f"{code_path}={short(lookup(payload, code_path))}"
        return _error(f"{decided}, {code}", text(lookup(payload, message_path)), job)
    if outcome is Outcome.SUCCEEDED:
        return _output(payload, operation, decided, job)
    return Classification(outcome, decided, job)


def _by_code(
    payload: Payload, operation: str | None, message: str, job: str | None
) -> Classification:
    """WAV, stem and MIDI-error callbacks and API errors: the ``code`` is the status."""
    if payload.get("code") is None:
        raise refuse("missing status", NAME, field="code")
    code = as_int(payload.get("code"))
    if code is None or (code not in CODES and code < 400):
        raise refuse("unknown status", NAME, field="code", value=short(payload.get("code")))
    outcome = CODES.get(code, Outcome.FAILED)
    if outcome is Outcome.SUCCEEDED:
        return _output(payload, operation, f"code={code}", job)
    if outcome is Outcome.FAILED:
        return _error(f"code={code}", message, job)
    return Classification(outcome, f"code={code} ({short(message, 40)})", job)


def _error(decided: str, message: str, job: str | None) -> Classification:
    moderated = MODERATION_TEXT.search(message) is not None
    outcome = Outcome.MODERATED if moderated else Outcome.FAILED
    return Classification(outcome, f"{decided} ({short(message, 40)})", job)


def _output(
    payload: Payload, operation: str | None, decided: str, job: str | None
) -> Classification:
    wanted = OUTPUTS.get(operation or "")
    finders = [wanted] if wanted else list(OUTPUTS.values())
    places = _containers(payload)
    found = next((f for _, find in finders for p in places if (f := find(p))), None)
    return done(decided, found, wanted[0] if wanted else "output", job)


ADAPTER: Final = Adapter(NAME, _rules)

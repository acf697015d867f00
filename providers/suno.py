"""Suno-style music API (sunoapi.org; kie.ai shares the schema): records, callbacks, errors.

Where the task status sits depends on the endpoint (docs.sunoapi.org, suno-api/*.md):

- music, extend, add-vocals/instrumental and lyrics callbacks: ``data.callbackType`` text |
  first | complete | error, tracks in ``data.data[]``; ``code`` and ``msg`` tell an error's kind;
- record-info polls: ``data.status`` (PENDING … SUCCESS, …_FAILED, SENSITIVE_WORD_ERROR), or
  ``data.successFlag`` for WAV, music-video, cover and MIDI records, output in
  ``data.response`` (``data.midiData`` for MIDI). ``successFlag`` is a word on some endpoints
  and a number on others, whose legend differs: cover 0 pending, 1 success, 2 generating,
  3 failed (get-cover-suno-details); MIDI 0 pending, 1 success, 2 and 3 failed
  (get-midi-details). A numeric 2 of an unknown endpoint is refused, never guessed;
- MIDI callbacks: ``data.state`` complete;
- Suno Voice (custom voices) records and callbacks: ``data.status`` wait_processing |
  processing_validate | wait_validating | processing_validate_fail | success | fail
  (:data:`VOICE_STATUS`), the voice in ``data.voiceId``;
- WAV, stem, music-video, cover callbacks, personas, timestamped lyrics and every error
  without a task have no status but ``code``: 200 is done, anything else is an error. Codes
  are unusual: 429 means out of credits, while 405/430 are the rate limits and 455 is
  maintenance. ``{"code": 200, "data": {"taskId"}}`` answers a task's creation: pending.

Each operation's output is looked for first (:data:`OUTPUTS`), then any output elsewhere in
``data`` (:mod:`providers.outputs`): tracks need an mp3 URL (a stream URL is not final, the
track's cover art is not the music, ``…/None.mp3`` is broken), lyrics need text (or
timestamped ``alignedWords``), 2-stem separation needs both the vocal and the instrumental URL
while a 12-stem split needs at least one stem (missing instruments are normal), exports need
their file, a music video its ``video_url``, cover art its ``images`` (plain URL strings), a
persona its ``personaId``, a custom voice its ``voiceId``. The envelope ``code`` never
overrides a documented task status; an error or rate-limit code (400 and up) decides when the
task status is one no document lists (a failed voice callback answers ``code: 400``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final, Unpack

import httpx

from ledger.errors import NoStatusQuery, Unclassifiable
from ledger.outcomes import Outcome
from providers.artifacts import is_link, nonempty_text
from providers.base import Classification
from providers.common import (
    Adapter,
    Payload,
    as_int,
    created,
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
from providers.outputs import Check, Field, Output, done, find_output
from providers.pollers import HTTPOptions, Poller, bearer, envelope_code
from providers.status_http import (
    JobGone,
    ProviderAuthFailed,
    ProviderRequestRejected,
    StatusClient,
    retryable_status,
)

__all__ = ["ADAPTER", "NAME", "RETRY_CODES", "SUNO_BASE_URL", "SunoPoller"]

NAME: Final = "suno"

CALLBACK_TYPES: Final[dict[str, Outcome]] = {
    "text": Outcome.PENDING,  # lyrics written, no audio yet
    "first": Outcome.PENDING,  # first track only, possibly a stream URL
    "complete": Outcome.SUCCEEDED,  # only with an output
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
    "GENERATE_MP4_FAILED": Outcome.FAILED,
    "GENERATE_COVER_FAILED": Outcome.FAILED,
    "SENSITIVE_WORD_ERROR": Outcome.MODERATED,
}

VOICE_STATUS: Final[dict[str, Outcome]] = {
    "wait_processing": Outcome.PENDING,
    "processing_validate": Outcome.PENDING,
    "wait_validating": Outcome.PENDING,  # the phrase is ready: the user records it next
    "processing_validate_fail": Outcome.FAILED,
    "success": Outcome.SUCCEEDED,  # only with the voiceId
    "fail": Outcome.FAILED,
}
"""Suno Voice task statuses, in ``data.status`` of its record and callbacks
(https://docs.sunoapi.org/suno-api/suno-voice-record-info.md, …/suno-voice-generate-callbacks.md).
"""

COVER_FLAGS: Final[dict[int, tuple[Outcome, str]]] = {
    0: (Outcome.PENDING, "pending"),
    1: (Outcome.SUCCEEDED, "success"),
    2: (Outcome.PENDING, "generating"),
    3: (Outcome.FAILED, "generation failed"),
}
MIDI_FLAGS: Final[dict[int, tuple[Outcome, str]]] = {
    0: (Outcome.PENDING, "pending"),
    1: (Outcome.SUCCEEDED, "success"),
    2: (Outcome.FAILED, "create task failed"),
    3: (Outcome.FAILED, "generate MIDI failed"),
}
"""The numeric ``successFlag`` legends; only 0, 1 and 3 mean the same on both endpoints."""

MIDI_STATE: Final[dict[str, Outcome]] = {"complete": Outcome.SUCCEEDED}

RETRY_CODES: Final = frozenset({405, 430, 455})
"""Rate limits (405, 430) and maintenance (455): nothing was created, ask again later."""
CODES: Final[dict[int, Outcome]] = {
    200: Outcome.SUCCEEDED,  # done: only with an output
    **dict.fromkeys(RETRY_CODES, Outcome.PENDING),
    429: Outcome.FAILED,  # insufficient credits (not a rate limit)
}
"""Codes of bodies without a task status; any other code from 400 up is an error (moderated
when ``msg`` says so: 400 "content violation", 413 "matches existing work of art")."""

MODERATION_TEXT: Final = re.compile(
    r"violat|sensitive|prohibited|copyright|existing work|inappropriate|moderat", re.IGNORECASE
)

TWO_STEMS: Final = ("vocal_url", "instrumental_url")
SKIP: Final = ("image_url", "imageUrl", "source_image_url", "sourceImageUrl")
"""A track's cover art: it comes with the music, it is not the music."""


def _lyrics(value: object, path: str) -> Output | None:
    for index, entry in enumerate(items(value)):
        lyric = mapping(entry) or {}
        if nonempty_text(lyric.get("text")) and lyric.get("status") != "failed":
            return Output(f"{path}[{index}].text", "lyrics text")
    return None


def _aligned_words(value: object, path: str) -> Output | None:
    for index, word in enumerate(items(value)):
        if nonempty_text(lookup(word, "word")):
            return Output(f"{path}[{index}].word", "timestamped lyrics")
    return None


def _stems(value: object, path: str) -> Output | None:
    info = mapping(value) or {}
    stems = {k for k in info if isinstance(k, str) and k.endswith("_url") and k != "origin_url"}
    if stems and not stems <= set(TWO_STEMS):  # split_stem: any one stem will do
        found = next((k for k in sorted(stems) if is_link(info[k])), None)
        return Output(f"{path}.{found}", "stem URL") if found else None
    if is_link(info.get("vocal_url")) and is_link(info.get("instrumental_url")):  # separate_vocal
        return Output(f"{path}.vocal_url", "stem URLs")
    return None


def _midi(value: object, path: str) -> Output | None:
    for index, instrument in enumerate(items(value)):
        if items(lookup(instrument, "notes")):
            return Output(f"{path}[{index}].notes", "MIDI notes")
    return None


def _both(name: str, check: Check | None = None, owns: bool = False) -> list[Field]:
    """A field as callbacks carry it (in ``data``) and as records do (in ``data.response``)."""
    return [Field(name, check, owns), Field(f"response.{name}", check, owns)]


TRACKS: Final = [*_both("data"), Field("response.sunoData")]
OUTPUTS: Final[dict[str, list[Field]]] = {
    "music": TRACKS,
    "extend": TRACKS,
    "add_vocals": TRACKS,
    "add_instrumental": TRACKS,
    "lyrics": [
        *_both("data", _lyrics),
        Field("response.lyricsData", _lyrics),
        Field("alignedWords", _aligned_words),
    ],
    "stems": [  # two stems need both halves: one alone is not searched for again
        *_both("vocal_removal_info", _stems, owns=True),
        *_both("vocal_separation_info", _stems, owns=True),
    ],
    "wav_export": [*_both("audioWavUrl"), *_both("audio_wav_url")],
    "midi_export": [Field("instruments", _midi), Field("midiData.instruments", _midi)],
    "video": [Field("video_url"), Field("response.videoUrl")],
    "image": _both("images"),
    "voice_clone": [Field("voiceId"), Field("personaId")],
}
"""Each operation's own output, looked at first; another operation (or none) tries them all."""
ALL_OUTPUTS: Final = [f for fields in OUTPUTS.values() for f in fields if f not in TRACKS]


STATUS_FIELDS: Final[tuple[tuple[str, dict[str, Outcome], str, str], ...]] = (
    ("data.callbackType", CALLBACK_TYPES, "code", "msg"),
    ("data.status", RECORD_STATUS | VOICE_STATUS, "data.errorCode", "data.errorMessage"),
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
    if field == "data.successFlag" and as_int(data.get("successFlag")) is not None:
        flag = _numeric_flag(payload, operation)
        if flag is None and _decisive_code(payload):
            return _by_code(payload, operation, text(payload.get("msg")), job)
        if flag is None:
            raise refuse("unknown status", NAME, field=field, value=data.get("successFlag"))
        outcome, decided = flag
    else:
        status = data.get(field.removeprefix("data."))
        if not (isinstance(status, str) and status in table) and _decisive_code(payload):
            return _by_code(payload, operation, text(payload.get("msg")), job)
        status = require_status(payload, field, NAME)
        decided = f"{field}={status!r}"
        outcome = status_in(table, status, NAME, field)
    if outcome is Outcome.FAILED:
        code = f"{code_path}={short(lookup(payload, code_path))}"
        return _error(f"{decided}, {code}", text(lookup(payload, message_path)), job)
    if outcome is Outcome.SUCCEEDED:
        return _output(payload, operation, decided, job)
    return Classification(outcome, decided, job)


def _decisive_code(payload: Payload) -> bool:
    """Whether the envelope ``code`` decides on its own: an error or rate-limit code (400 and
    up). It beats a task status that no document lists (never a documented one); ``200``
    does not, as it says only that the HTTP call went through."""
    code = as_int(payload.get("code"))
    return code is not None and code >= 400


def _numeric_flag(payload: Payload, operation: str | None) -> tuple[Outcome, str] | None:
    """A numeric ``successFlag``, read with the legend of the endpoint that sent it; ``None``
    for a value that legend does not have."""
    flag = as_int(lookup(payload, "data.successFlag"))
    if operation == "midi_export" or lookup(payload, "data.midiData") is not None:
        legend = MIDI_FLAGS
    elif operation == "image" or lookup(payload, "data.response.images") is not None:
        legend = COVER_FLAGS
    else:  # unknown endpoint: only the values both legends agree on
        legend = {
            k: v for k, v in COVER_FLAGS.items() if k in MIDI_FLAGS and MIDI_FLAGS[k][0] is v[0]
        }
    if flag not in legend:
        return None
    outcome, meaning = legend[flag]
    return outcome, f"data.successFlag={flag} ({meaning})"


def _by_code(
    payload: Payload, operation: str | None, message: str, job: str | None
) -> Classification:
    """Bodies whose ``code`` is the status: exports, covers, personas, API errors."""
    if payload.get("code") is None:
        raise refuse("missing status", NAME, field="code")
    code = as_int(payload.get("code"))
    if code is None or (code not in CODES and code < 400):
        raise refuse("unknown status", NAME, field="code", value=short(payload.get("code")))
    outcome = CODES.get(code, Outcome.FAILED)
    if outcome is Outcome.SUCCEEDED:
        data = mapping(payload.get("data")) or {}
        if not set(data) - {"taskId", "task_id"}:
            if job is None:
                raise refuse("missing result", NAME, field="data")
            return created(job, f"code={code}, data.taskId")
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
    known = OUTPUTS.get(operation or "")
    fields = known if known is not None else [*TRACKS, *ALL_OUTPUTS]
    found = find_output(payload.get("data"), fields, at="data", skip=SKIP, operation=operation)
    what = f"data ({operation} output first)" if known is not None else "data"
    return done(decided, found, what, job)


ADAPTER: Final = Adapter(NAME, _rules)


# --------------------------------------------------------------------------- status poller

SUNO_BASE_URL: Final = "https://api.sunoapi.org"
SUNO_RECORDS: Final[dict[str, str]] = {
    "lyrics": "/api/v1/lyrics/record-info",
    "wav_export": "/api/v1/wav/record-info",
}
"""Record-info endpoint per operation; every other operation is a music task."""
SUNO_MUSIC_RECORD: Final = "/api/v1/generate/record-info"
SUNO_UNPOLLED: Final = frozenset({"stems", "midi_export"})
SUNO_AUTH_CODES: Final = frozenset({401})


def _suno_retryable(response: httpx.Response) -> bool:
    if retryable_status(response):
        return True
    code = envelope_code(response) if response.status_code < 300 else None
    return code is not None and (code in RETRY_CODES or code >= 500)


class SunoPoller(Poller):
    """``GET /api/v1/…/record-info?taskId=``: the record envelope, with the task in ``data``.

    - Suno: codes 405 / 430 (rate limits), 455 (maintenance) and 5xx are retried; 401 is
      ``ProviderAuthFailed``; other codes are ``ProviderRequestRejected``. A 404 is documented
      as "invalid method or path", and no answer is documented for an unknown task: a 404, in the
      body or as the HTTP status, is never ``JobGone`` but ``ProviderRequestRejected``. The
      stem and MIDI record-info answers are not shaped like what the classifier reads, so those
      operations are not polled (``NoStatusQuery``).
    """

    name = "suno"

    def __init__(
        self, api_key: str, base_url: str = SUNO_BASE_URL, **options: Unpack[HTTPOptions]
    ) -> None:
        http = StatusClient(base_url, bearer(api_key), retryable=_suno_retryable, **options)
        super().__init__(http)

    def _poll(self, job_id: str, operation: str | None) -> dict[str, Any]:
        if operation in SUNO_UNPOLLED:
            raise NoStatusQuery(provider=self.name, operation=operation)
        path = SUNO_RECORDS.get(operation or "", SUNO_MUSIC_RECORD)
        try:
            body = self._http.get_json(path, {"taskId": job_id}, provider=self.name, job_id=job_id)
        except JobGone as gone:  # "invalid method or path": no proof that the task is gone
            raise ProviderRequestRejected(
                provider=self.name, job_id=job_id, status=gone.status
            ) from gone
        data = body.get("data")
        if isinstance(data, Mapping) and ("status" in data or "successFlag" in data):
            self._same_job(data.get("taskId"), job_id)
            return body
        code = as_int(body.get("code"))
        if code in SUNO_AUTH_CODES:
            raise ProviderAuthFailed(provider=self.name, code=code)
        if code is not None and code != 200:
            raise ProviderRequestRejected(provider=self.name, job_id=job_id, code=code)
        raise Unclassifiable("the record-info answer holds no task", provider=self.name)

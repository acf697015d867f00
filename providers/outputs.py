"""What counts as output: the one decision that every provider adapter makes the same way.

A provider saying "done" proves nothing: the *result part* of its payload must carry an
output. An output is, wherever it sits in that result:

- a link (:func:`providers.artifacts.is_link`): a plausible http(s) URL, never a placeholder
  such as ``…/None.mp3``, or a ``data:`` URI with something after the comma;
- inline media under one of the keys providers document for it (:data:`INLINE_MEDIA_KEYS`:
  MiniMax ``audio`` in hex, ElevenLabs ``audio_base64`` …): base64 or hex;
- an id documented as the whole output of an operation (:data:`DELIVERABLE_IDS`: a cloned
  or designed voice's ``voice_id``, a trainer's ``finetune_id`` …), or under a key the
  adapter names for its own endpoint (MiniMax ``file_id``);
- for a text operation (:data:`TEXT_OPERATIONS`: lyrics), non-empty text: the result itself
  when it is text or a list of text pieces (a language model's tokens), or text under a key
  documented for it (:data:`TEXT_KEYS`). For any other operation text is never output: a
  message is not music.

:func:`find_output` tries the operation's known fields first, then scans the rest of the
result, so an output under a key no list names still counts. It never takes for an output
the request's inputs echoed back (``input``, ``param``, ``task_info`` …), the API's own links
(Replicate's ``urls.get``/``urls.cancel``/``urls.stream``, fal's ``response_url`` …) or the
companions of an output that are not what was paid for (watermarked copies, stream
previews, training config files). :func:`done` turns the answer into ``succeeded`` or
``empty_success``, with the field found named in the reason.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Final

from ledger.outcomes import Outcome
from providers.artifacts import is_data_uri, is_inline_media, is_plausible_url, nonempty_text
from providers.base import OPERATIONS, Classification
from providers.common import lookup

__all__ = [
    "BASE64_KEYS",
    "DELIVERABLE_IDS",
    "INLINE_MEDIA_KEYS",
    "NEVER_OUTPUT",
    "TEXT_KEYS",
    "TEXT_OPERATIONS",
    "Check",
    "Field",
    "Output",
    "deliverable_ids",
    "done",
    "find_output",
    "is_deliverable_id",
    "output_kind",
]

INPUTS = frozenset(
    {
        "input",
        "inputs",
        "param",
        "params",
        "parameters",
        "arguments",
        "request",
        "prompt",
        "negative_prompt",
        "promptJson",
        "task_info",  # Kling: the creation parameters, e.g. task_info.parent_video.url
        "parent_video",
        "materials",  # Kling elements: the reference material uploaded by the user
        "origin_url",  # Suno stems: the track that was separated
        "originUrl",
        "source_task_id",
    }
)
"""Keys under which providers echo the request back: an input is never the output."""

API_LINKS = frozenset(
    {
        "urls",  # Replicate: get, cancel, stream, web
        "response_url",  # fal queue: where the result will be
        "status_url",
        "cancel_url",
        "logs_url",
        "callback_url",
        "callbackUrl",
        "callBackUrl",
        "webhook",
        "webhook_url",
    }
)
"""Keys holding the API's own links: where to ask, not what was made."""

COMPANIONS = frozenset(
    {
        "watermark_url",  # Kling: the watermarked copy; the paid output is ``url``
        "watermarked_url",
        "stream_audio_url",  # Suno: a preview stream before the mp3 exists
        "streamAudioUrl",
        "source_stream_audio_url",
        "sourceStreamAudioUrl",
        "thumbnail",
        "thumbnail_url",
        "preview_url",
        "config_file",  # fal trainers: a config file alone is not a trained model
        "debug_preprocessed_output",
        "subtitle_file",  # MiniMax speech: subtitles beside the audio
    }
)
"""Keys of things that come with an output but are not the output that was paid for."""

NEVER_OUTPUT = INPUTS | API_LINKS | COMPANIONS
"""Keys whose subtrees are never searched for output, for every provider."""

INLINE_MEDIA_KEYS = frozenset(
    {
        "audio",  # MiniMax music and speech: hex (the default output_format)
        "trial_audio",  # MiniMax voice design: hex
        "image_base64",  # MiniMax image generation with response_format=base64: a list
        "audio_base64",  # ElevenLabs speech with timestamps, and audio bytes as they reach us
        "audio_base_64",  # ElevenLabs voice design previews (VoicePreviewResponseModel)
        "audioBase64",
        "b64_json",  # OpenAI-style image answers
        "file_data",  # fal file objects
    }
)
"""The keys under which a provider documents media sent inline. Only there is a base64 or hex
string taken for media: elsewhere an id such as a UUID would pass for base64."""

BASE64_KEYS: Final = frozenset(
    {"image_base64", "audio_base64", "audio_base_64", "audioBase64", "b64_json", "file_data"}
)
"""The inline media keys documented as base64 only: there a value counts without its padding,
as a hex reading (MiniMax's ``audio``, where an odd length means broken audio) does not apply."""

DELIVERABLE_IDS: Final[Mapping[str, frozenset[str]]] = {
    "voice_clone": frozenset(
        {
            # ElevenLabs POST /v1/voices/add and /v1/voices/pvc (elevenlabs-python
            # AddVoiceIvcResponseModel); MiniMax voice design; fal kling-video/create-voice,
            # whose whole output is {"voice_id"} (fal.ai/models/fal-ai/kling-video/create-voice)
            "voice_id",
            # Suno Voice: the custom voice (docs.sunoapi.org/suno-api/suno-voice-record-info)
            "voiceId",
            # ElevenLabs voice design previews: the voice to create from a preview
            # (elevenlabs-python VoicePreviewResponseModel.generated_voice_id)
            "generated_voice_id",
            # Suno personas (docs.sunoapi.org/suno-api/generate-persona)
            "personaId",
        }
    ),
    "training": frozenset(
        {
            "finetune_id",  # fal flux-pro-trainer: the fine-tune to generate with
            "style_id",  # fal recraft create-style: the style to generate with
        }
    ),
}
"""Per operation, the keys whose value a provider documents as the whole output: an id that
names what was made (a voice, a fine-tune). Under any other operation such a key is an input
echoed back (a text-to-speech answer naming the ``voice_id`` it spoke with), not output."""

TEXT_OPERATIONS: Final = frozenset({"lyrics"})
"""Operations whose deliverable is text."""
TEXT_KEYS: Final = frozenset(
    {
        "lyrics",  # MiniMax POST /v1/lyrics_generation (platform.minimax.io/docs/api-reference/
        #           lyrics-generation): {"song_title", "style_tags", "lyrics", "base_resp"}
    }
)
"""Keys under which a text operation's output is documented; the song title or style tags
beside it are not the lyrics."""

MAX_DEPTH = 32
"""Deeper than any documented result; a deeper payload is searched no further."""


@dataclass(frozen=True, slots=True)
class Output:
    """An output found in a payload: where it is and what kind of output it is."""

    path: str
    """Dotted path from the payload root, with list indexes: ``data.task_result.videos[0].url``."""
    kind: str
    """``URL``, ``data URI``, ``inline media``, ``documented id`` or a check's own word."""

    def __str__(self) -> str:
        path = " ".join(self.path.split()) or "the result"
        return f"{self.kind} at {path if len(path) <= 80 else path[:79] + '…'}"


Check = Callable[[object, str], Output | None]
"""A provider's own test of a known field: ``(value, path) -> Output | None``."""


@dataclass(frozen=True, slots=True)
class Field:
    """A known output field of an operation, relative to the result part."""

    path: str
    """Dotted path inside the result; ``""`` is the result itself."""
    check: Check | None = None
    """How to read the field; by default any output under it counts."""
    owns: bool = False
    """The check's verdict on this subtree is final: when it finds nothing there, the scan of
    the rest of the result does not look inside (two stems where both halves are needed)."""


@dataclass(slots=True)
class _Search:
    skip: frozenset[str]
    ids: frozenset[str]
    text: bool = False
    owned: set[str] = field(default_factory=set)


def output_kind(value: object, key: str = "", *, text: bool = False) -> str | None:
    """What kind of output ``value`` is on its own, found under ``key``; ``None`` if none.

    Inline media counts only under :data:`INLINE_MEDIA_KEYS`, so an id such as ``audioId``
    or a word such as ``"flac"`` in ``audio_format`` is never taken for base64 audio. Text
    counts only for a text operation (``text``) and under :data:`TEXT_KEYS`.
    """
    if is_plausible_url(value):
        return "URL"
    if is_data_uri(value):
        return "data URI"
    if key in INLINE_MEDIA_KEYS and is_inline_media(value, unpadded=key in BASE64_KEYS):
        return "inline media"
    if text and key in TEXT_KEYS and nonempty_text(value):
        return "text"
    return None


def deliverable_ids(operation: str | None) -> frozenset[str]:
    """The keys documented as the whole output of ``operation`` (:data:`DELIVERABLE_IDS`);
    for an unknown operation (``None``, or a name no charge may carry), every operation's."""
    if operation is None or operation not in OPERATIONS:
        return frozenset().union(*DELIVERABLE_IDS.values())
    return DELIVERABLE_IDS.get(operation, frozenset())


def _is_text(value: object) -> bool:
    """Non-empty text, or a list of text pieces (a language model's tokens) not all blank."""
    if isinstance(value, list | tuple):
        return all(isinstance(p, str) for p in value) and any(nonempty_text(p) for p in value)
    return nonempty_text(value)


def is_deliverable_id(value: object) -> bool:
    """True for an id that can name a deliverable: a non-empty string or a positive integer."""
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return value > 0
    return nonempty_text(value) and value.strip().lower() not in ("none", "null", "undefined")


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path and key else path or key


def _scan(value: object, path: str, key: str, search: _Search, depth: int = 0) -> Output | None:
    if depth > MAX_DEPTH or path in search.owned:
        return None
    kind = output_kind(value, key, text=search.text)
    if kind is not None:
        return Output(path, kind)
    if isinstance(value, Mapping):
        for name, item in value.items():
            if not isinstance(name, str) or name in search.skip:
                continue
            sub = _join(path, name)
            if name in search.ids and is_deliverable_id(item):
                return Output(sub, "documented id")
            found = _scan(item, sub, name, search, depth + 1)
            if found is not None:
                return found
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            found = _scan(item, f"{path}[{index}]", key, search, depth + 1)
            if found is not None:
                return found
    return None


def find_output(
    result: object,
    known: Iterable[Field] = (),
    *,
    at: str = "",
    ids: Iterable[str] = (),
    skip: Iterable[str] = (),
    operation: str | None = "",
) -> Output | None:
    """The first output in ``result``: the ``known`` fields in order, then anywhere else.

    ``result`` is the result part of a payload found at path ``at`` (used in the reported
    path); ``ids`` are keys whose value the provider documents as the deliverable of the
    endpoint that answered; ``skip`` adds the provider's own non-outputs to
    :data:`NEVER_OUTPUT`. ``operation`` is the charged operation: its documented ids
    (:data:`DELIVERABLE_IDS`) count, and so does text for a text operation; ``None`` for an
    unknown operation (every operation's ids count), ``""`` (the default) when the caller
    searches a field of its own endpoint. Never raises.
    """
    search = _Search(
        NEVER_OUTPUT | frozenset(skip),
        frozenset(ids) | (deliverable_ids(operation) if operation != "" else frozenset()),
        text=operation in TEXT_OPERATIONS,
    )
    root_key = at.rsplit(".", 1)[-1]
    for known_field in known:
        value = lookup(result, known_field.path) if known_field.path else result
        path = _join(at, known_field.path)
        key = known_field.path.rsplit(".", 1)[-1] or root_key
        if known_field.check is None:
            found = _scan(value, path, key, search)
        else:
            found = known_field.check(value, path)
            if found is None and known_field.owns:
                search.owned.add(path)
        if found is not None:
            return found
    found = _scan(result, at, root_key, search)
    if found is None and search.text and _is_text(result):
        kind = "text pieces" if isinstance(result, list | tuple) else "text"
        return Output(at, kind)
    return found


def done(decided: str, found: Output | None, where: str, job: str | None) -> Classification:
    """A finished job: ``succeeded`` with an output, ``empty_success`` with none anywhere.

    ``decided`` names the status that said done, ``where`` the fields that were searched.
    """
    if found is not None:
        return Classification(Outcome.SUCCEEDED, f"{decided} with {found}", job)
    return Classification(Outcome.EMPTY_SUCCESS, f"{decided} but no output in {where}", job)

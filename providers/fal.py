"""fal.ai: queue status polls, webhook bodies and result fetches.

Three shapes arrive (https://docs.fal.ai/model-endpoints/webhooks, https://docs.fal.ai/errors,
https://docs.fal.ai/documentation/model-apis/request-errors):

- queue status, ``GET …/requests/{id}/status``: ``status`` IN_QUEUE | IN_PROGRESS | COMPLETED,
  with ``error`` and ``error_type`` when a COMPLETED request failed. COMPLETED never carries
  the output, and content-filter rejections have been seen as COMPLETED without an error, so a
  clean COMPLETED stays ``pending`` until the result fetch (``response_url``) is classified;
- webhook: ``status`` OK | ERROR, ``payload`` (the model output, or the error detail),
  ``error`` and ``payload_error`` (the output was not JSON and was dropped);
- result fetch, ``GET …/requests/{id}``: the model output itself, without any status, or an
  error body: ``{"detail": [{"loc", "msg", "type"}]}`` for model errors (``detail`` may still be
  a plain string on older apps) and ``{"detail": "…", "error_type": "…"}`` for request errors.

Outputs are file objects ``{"url", "content_type", …}``; with ``sync_mode`` the ``url`` is a
``data:`` URI (https://github.com/huggingface/huggingface.js/pull/1149). Trainers deliver
``diffusers_lora_file`` (flux LoRA, hunyuan), ``lora_file`` (wan-trainer), ``finetune_id``
(flux-pro-trainer) or ``style_id`` (recraft create-style); their ``config_file`` alone is not
a trained model. Kling's create-voice on fal answers ``{"voice_id"}``, its whole output
(https://fal.ai/models/fal-ai/kling-video/create-voice/llms.txt). Any other output-like value
in the result counts too (:mod:`providers.outputs`). Image models flag each image with
``has_nsfw_concepts``: a result with one image let through is delivered
(:func:`_unflagged_image`).
"""

from __future__ import annotations

import re
from typing import Final

from ledger.outcomes import Outcome
from providers.artifacts import any_true, is_link, nonempty_text
from providers.base import Classification
from providers.common import (
    Adapter,
    Payload,
    items,
    job_id,
    mapping,
    refuse,
    require_status,
    short,
    status_in,
    text,
)
from providers.outputs import Field, Output, done, find_output

__all__ = ["ADAPTER", "NAME"]

NAME: Final = "fal"

STATUS: Final[dict[str, Outcome]] = {
    "IN_QUEUE": Outcome.PENDING,
    "IN_PROGRESS": Outcome.PENDING,
    "CANCELLATION_REQUESTED": Outcome.PENDING,  # cancel answer: the request may still finish
    "COMPLETED": Outcome.PENDING,  # unless it carries error/error_type; output is fetched apart
    "OK": Outcome.SUCCEEDED,  # webhook: only with a usable artifact in ``payload``
    "ERROR": Outcome.FAILED,  # webhook: the error detail may say moderated or cancelled
}

ERROR_TYPES: Final[dict[str, Outcome]] = {
    "content_policy_violation": Outcome.MODERATED,  # 422 model error
    "client_cancelled": Outcome.CANCELLED,  # 499 request error
}
"""Model and request error types that are not plain failures; every other type is ``failed``."""

AUDIO_KEYS: Final = ("audio", "audio_file", "audio_url")
OUTPUT_KEYS: Final[dict[str, tuple[str, ...]]] = {
    "video": ("video", "videos"),
    "image": ("images", "image"),
    "music": AUDIO_KEYS,
    "speech": AUDIO_KEYS,
    "sound_effects": AUDIO_KEYS,
    "training": ("diffusers_lora_file", "lora_file", "finetune_id", "style_id"),
    "voice_clone": ("voice_id",),
}
"""Where each operation's output is looked for first; then anywhere else in the result."""

ANY_OUTPUT: Final = tuple(dict.fromkeys(key for keys in OUTPUT_KEYS.values() for key in keys))
NSFW_FLAGS: Final = ("has_nsfw_concepts", "nsfw_content_detected")
POLICY_TEXT: Final = re.compile(r"content[ _]polic|content checker|nsfw", re.IGNORECASE)


def _rules(payload: Payload, operation: str | None) -> Classification:
    job = job_id(payload, "request_id", "gateway_request_id")
    if "status" not in payload:
        return _result_body(payload, operation)
    status = require_status(payload, "status", NAME)
    outcome = status_in(STATUS, status, NAME, "status")
    if status in ("COMPLETED", "ERROR"):
        error = _error(payload, job)
        if error is not None:
            return error
    if status == "OK":
        output = mapping(payload.get("payload"))
        if output is None:
            return _not_an_object(payload, operation, job)
        return _output(output, operation, "status='OK'", "payload.", job)
    return Classification(outcome, f"status={status!r}", job)


def _not_an_object(payload: Payload, operation: str | None, job: str | None) -> Classification:
    """A webhook whose ``payload`` is not the model's output object: null when fal could not
    read the output as JSON (``payload_error`` says why), anything else as it is."""
    value = payload.get("payload")
    if value is None:
        shown = f"null ({short(payload.get('payload_error'))})"
    else:
        kind = {list: "a list", str: "a string", bool: "a boolean"}.get(type(value), "a number")
        shown = f"{kind}, not an object"
    found = find_output(value, at="payload", operation=operation)
    return done("status='OK'", found, f"payload: payload is {shown}", job)


def _result_body(payload: Payload, operation: str | None) -> Classification:
    """A result fetch: an error body, or the model output (which has no status field)."""
    if "detail" in payload or "error_type" in payload:
        error = _error(payload, None)
        if error is not None:
            return error
    elif any(key in payload for key in (*ANY_OUTPUT, *NSFW_FLAGS)) or any(
        _is_file(item) for value in payload.values() for item in [value, *items(value)]
    ):
        return _output(payload, operation, "result body", "", None)
    raise refuse("missing status", NAME, field="status")


def _is_file(value: object) -> bool:
    """A fal ``File`` object: a link with the file's metadata beside it. Only such a value (or
    a known output key) makes a body without status a model result; a bare URL does not."""
    file = mapping(value)
    return (
        file is not None
        and is_link(file.get("url"))
        and any(key in file for key in ("content_type", "file_name", "file_size"))
    )


def _output(
    output: Payload, operation: str | None, decided: str, prefix: str, job: str | None
) -> Classification:
    """A finished model output: it needs an artifact, and one a safety checker let through."""
    for flag in NSFW_FLAGS:
        flags = output.get(flag)
        if any_true(flags):
            clean = _unflagged_image(output, flags, prefix)
            if clean is None:
                return Classification(Outcome.MODERATED, f"{decided}, {prefix}{flag} true", job)
            reason = f"{decided} with {clean}, though {prefix}{flag} flags another image"
            return Classification(Outcome.SUCCEEDED, reason, job)
    keys = OUTPUT_KEYS.get(operation or "", ANY_OUTPUT)
    known = [Field(key) for key in keys]
    found = find_output(output, known, at=prefix.rstrip("."), operation=operation)
    return done(decided, found, f"{prefix}{'|'.join(keys)} or elsewhere", job)


def _unflagged_image(output: Payload, flags: object, prefix: str) -> Output | None:
    """The first image a per-image safety flag lets through, with an output; ``None`` when
    every image is flagged or the flag covers the whole output.

    Decision (a partial result is a delivered result): fal's image models answer
    ``has_nsfw_concepts`` as a list of booleans, one per image in ``images``
    (https://github.com/carlosdp/fal-rs/blob/main/fal/src/endpoints/fal_ai/flux/dev/mod.rs, a
    client generated from fal's schemas), and a flagged image comes back black
    (https://github.com/fal-ai/fal-js/issues/41). One unflagged image with a URL is an image the
    customer received: a delivered usable output is success, and refunding work the customer
    received is the costliest error (DESIGN, the outcomes table), so the generation is
    ``succeeded``. Only when every image is flagged is it ``moderated`` (its credits come back).
    An image beyond the end of the flag list has no flag: it counts as let through.
    """
    if not isinstance(flags, list | tuple):
        return None
    for index, image in enumerate(items(output.get("images"))):
        if index < len(flags) and flags[index] is True:
            continue
        found = find_output(image, at=f"{prefix}images[{index}]")
        if found is not None:
            return found
    return None


def _error(body: Payload, job: str | None) -> Classification | None:
    """The outcome of an error carried by ``body`` or its webhook ``payload``; None if none is."""
    places = [("", body)]
    inner = mapping(body.get("payload"))
    if inner is not None:
        places.append(("payload.", inner))
    for prefix, place in places:  # request errors say what happened to the whole request
        error_type = place.get("error_type")
        if nonempty_text(error_type):
            outcome = ERROR_TYPES.get(error_type, Outcome.FAILED)
            return Classification(outcome, f"{prefix}error_type={error_type!r}", job)
    for prefix, place in places:  # model errors: a list of {loc, msg, type}
        details = [d for d in items(place.get("detail")) if mapping(d) is not None]
        for detail in details:
            kind, msg = text(detail.get("type")), text(detail.get("msg"))
            if kind in ERROR_TYPES or POLICY_TEXT.search(msg):
                outcome = ERROR_TYPES.get(kind, Outcome.MODERATED)
                return Classification(outcome, f"{prefix}detail[].type={kind!r}", job)
        if details:
            first = details[0]
            shown = short(first.get("type") or first.get("msg"))
            return Classification(Outcome.FAILED, f"{prefix}detail[0].type={shown}", job)
    for prefix, place in places:  # older apps and COMPLETED statuses: a plain message
        for key in ("detail", "error"):
            message = place.get(key)
            if nonempty_text(message):
                policy = POLICY_TEXT.search(message) is not None
                outcome = Outcome.MODERATED if policy else Outcome.FAILED
                return Classification(outcome, f"{prefix}{key}={short(message)}", job)
    return None


ADAPTER: Final = Adapter(NAME, _rules)

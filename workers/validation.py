"""What every door into Refundry refuses: one set of rules, in one place.

``workers.client`` (the Python API), the ``refundry`` command line and any later entry
(an HTTP API) call these before anything is stored, so each door refuses the same input the
same way. A refusal raises an ``InvalidInput`` (``ledger.errors``) whose ``field`` names
the argument, and nothing is recorded.

- credits: a whole number (``int``, never ``bool`` or ``float``) from 1 to ``MAX_CREDITS``
  (10**12), else ``InvalidAmount`` (also a ``LedgerError``);
- ids and keys (generation, account, provider job, idempotency key, message id): a string
  of 1 to ``MAX_ID_LENGTH`` (255) characters, no leading or trailing whitespace, no control
  character, no lone surrogate (not Unicode: no UTF-8 can hold it), no invisible format
  character (Unicode category Cf: zero-width spaces and joiners, BOM, bidirectional
  overrides) or line/paragraph separator, and in Unicode NFC form (``café`` composed, so one
  id is never stored as two that look the same), else ``InvalidIdentifier``;
- a provider job id (a charge's, and a result's before it settles or is recorded on a
  charge): an id as above that is also of the shape its provider documents
  (``providers.job_ids``: ASCII letters, digits, ``-``, ``_``, at most 128; Replicate's in
  lower case), never trimmed or case-folded, else ``InvalidIdentifier``;
- a reason (free text): a string of 1 to ``MAX_TEXT_LENGTH`` (1000) characters, not blank
  (only whitespace, Unicode Default_Ignorable code points such as format characters,
  variation selectors and Hangul fillers, the blank Braille pattern U+2800, or combining
  marks with nothing to combine with), no control character, no lone surrogate, else
  ``InvalidInput``; an id made only of these is refused the same way;
- operation: one of ``providers.base.OPERATIONS``, else ``UnknownOperation`` listing them;
- provider: one of ``providers.registry.PROVIDER_NAMES`` (``stripe`` for payment events),
  else ``UnknownProvider`` listing them;
- payload or event: a JSON object (string keys; strings, whole or finite numbers, booleans,
  null, lists, objects), no NaN or Infinity, no whole number of more than 100 digits, no
  lone surrogate in a string, at most ``MAX_PAYLOAD_DEPTH`` (32) levels of nesting and
  ``MAX_PAYLOAD_BYTES`` (1 MiB) as compact UTF-8 JSON, else ``InvalidPayload`` (also an
  ``Unclassifiable``); given as text, it must be UTF-8. The JSON rules live with the one
  decoder every door uses, ``providers.json_bodies``. The error never repeats the payload,
  which may hold secrets.
  A ``dict`` subclass (``OrderedDict``, ``defaultdict``) is accepted and copied as a plain
  ``dict``; other mappings (``UserDict``, ``MappingProxyType``) are refused: pass
  ``dict(mapping)``;
- a raw webhook body: ``bytes`` (or ``str``, taken as UTF-8) within ``MAX_PAYLOAD_BYTES``,
  and its signature header a string of at most ``MAX_HEADER_LENGTH`` (8192) characters,
  else ``InvalidPayload`` / ``InvalidInput``.

Real provider payloads nest fewer than ten levels and weigh kilobytes; the caps leave them
room while a hostile or broken body is refused before it reaches a worker.
"""

from __future__ import annotations

import json
import re
import unicodedata
from typing import Any, Final

from ledger.credits import MAX_CREDITS, whole_credits
from ledger.errors import (
    InvalidIdentifier,
    InvalidInput,
    InvalidPayload,
    UnknownOperation,
    UnknownProvider,
)
from providers.base import OPERATIONS
from providers.job_ids import InvalidJobId, check_job_id
from providers.json_bodies import MAX_DEPTH, check_tree, decode_json
from providers.registry import PROVIDER_NAMES

__all__ = [
    "MAX_CREDITS",
    "MAX_HEADER_LENGTH",
    "MAX_ID_LENGTH",
    "MAX_PAYLOAD_BYTES",
    "MAX_PAYLOAD_DEPTH",
    "MAX_TEXT_LENGTH",
    "credits",
    "identifier",
    "job_id",
    "json_document",
    "operation",
    "optional_identifier",
    "optional_job_id",
    "optional_operation",
    "payload",
    "payload_size",
    "provider",
    "raw_body",
    "signature_header",
    "text",
]

MAX_ID_LENGTH: Final[int] = 255
MAX_TEXT_LENGTH: Final[int] = 1000
MAX_PAYLOAD_DEPTH: Final[int] = MAX_DEPTH
MAX_PAYLOAD_BYTES: Final[int] = 1024 * 1024
MAX_HEADER_LENGTH: Final[int] = 8192

_SURROGATE: Final = re.compile("[\ud800-\udfff]")

_SHOWN_CHARACTERS = 64  # how much of a refused id an error repeats


def credits(value: object, *, field: str = "credits") -> int:
    """``value`` as credits: a whole number in 1 … ``MAX_CREDITS``; else ``InvalidAmount``."""
    return whole_credits(value, field=field)


def identifier(value: object, *, field: str) -> str:
    """``value`` as an id or key; ``InvalidIdentifier`` naming ``field`` when it is not a
    string, is empty or blank, has leading or trailing whitespace, holds a control
    character, or is longer than ``MAX_ID_LENGTH`` characters."""
    problem = _string_problem(value, MAX_ID_LENGTH) or _lookalike_problem(str(value))
    if problem is not None:
        raise InvalidIdentifier(f"{field} {problem}", field=field, value=_shown(value))
    return str(value)


def job_id(value: object, *, provider: str, field: str = "provider_job_id") -> str:
    """``value`` as ``provider``'s job id: an ``identifier`` of the shape the provider
    documents (``providers.job_ids.check_job_id``), exactly as given (never trimmed, never
    case-folded). ``InvalidIdentifier`` naming ``field`` otherwise."""
    checked = identifier(value, field=field)
    try:
        check_job_id(provider, checked)
    except InvalidJobId:
        raise InvalidIdentifier(
            f"{field} is not of the shape {provider} documents for its job ids",
            field=field,
            value=_shown(value),
        ) from None
    return checked


def optional_job_id(value: object, *, provider: str, field: str = "provider_job_id") -> str | None:
    """``None``, or ``value`` checked as ``job_id``."""
    return None if value is None else job_id(value, provider=provider, field=field)


def optional_identifier(value: object, *, field: str) -> str | None:
    """``None``, or ``value`` checked as ``identifier``."""
    return None if value is None else identifier(value, field=field)


def text(value: object, *, field: str) -> str:
    """``value`` as free text (a reason); ``InvalidInput`` naming ``field`` when it is not a
    string, is blank, holds a control character or is longer than ``MAX_TEXT_LENGTH``."""
    problem = _string_problem(value, MAX_TEXT_LENGTH)
    if problem is not None:
        raise InvalidInput(f"{field} {problem}", field=field, value=_shown(value))
    return str(value)


def operation(value: object, *, field: str = "operation") -> str:
    """``value`` when it is one of ``OPERATIONS``; else ``UnknownOperation`` listing them."""
    if not isinstance(value, str) or value not in OPERATIONS:
        raise UnknownOperation(field=field, operation=_shown(value), valid=", ".join(OPERATIONS))
    return value


def optional_operation(value: object, *, field: str = "operation") -> str | None:
    """``None``, or ``value`` checked as ``operation``."""
    return None if value is None else operation(value, field=field)


def provider(value: object, *, known: tuple[str, ...] = PROVIDER_NAMES) -> str:
    """``value`` when it is one of ``known`` (by default every provider Refundry can
    classify); else ``UnknownProvider`` listing them."""
    if not isinstance(value, str) or value not in known:
        raise UnknownProvider(provider=_shown(value), valid=", ".join(known))
    return value


def payload(value: object, *, field: str = "payload") -> dict[str, Any]:
    """A copy of ``value`` as strict JSON: an object whose keys are strings and whose values
    are JSON values (``providers.json_bodies.check_tree``: no NaN or Infinity, no number of
    more than 100 digits, no lone surrogate), at most ``MAX_PAYLOAD_DEPTH`` levels deep and
    ``MAX_PAYLOAD_BYTES`` long encoded. Raises ``InvalidPayload`` naming ``field`` (and never
    repeating the payload, which may hold secrets)."""
    if not isinstance(value, dict):
        raise InvalidPayload(
            f"{field} must be a JSON object (a dict)", field=field, type=type(value).__name__
        )
    check_tree(value, field=field, max_depth=MAX_PAYLOAD_DEPTH)
    try:
        encoded = json.dumps(value, allow_nan=False, ensure_ascii=False, separators=(",", ":"))
    except (TypeError, ValueError) as exc:  # a nested mapping that is not a dict, say
        raise InvalidPayload(
            f"{field} holds a value JSON cannot represent", field=field, type=type(exc).__name__
        ) from None
    payload_size(encoded, field=field)
    copy: dict[str, Any] = decode_json(encoded, field=field)
    return copy


def payload_size(raw: str | bytes, *, field: str = "payload") -> None:
    """Refuse a JSON text longer than ``MAX_PAYLOAD_BYTES`` (UTF-8) with ``InvalidPayload``,
    before any work is spent on it."""
    size = len(raw.encode("utf-8", "surrogatepass") if isinstance(raw, str) else raw)
    if size > MAX_PAYLOAD_BYTES:
        raise InvalidPayload(
            f"{field} is too large", field=field, bytes=size, maximum=MAX_PAYLOAD_BYTES
        )


def raw_body(value: object, *, field: str = "payload") -> bytes:
    """``value`` as the raw bytes of a webhook body: ``bytes`` as received, or ``str`` taken
    as UTF-8, within ``MAX_PAYLOAD_BYTES``. ``InvalidPayload`` naming ``field`` for any
    other type, a ``str`` that UTF-8 cannot hold (a lone surrogate) or a larger body."""
    if isinstance(value, bytes | bytearray):
        body = bytes(value)
    elif isinstance(value, str):
        if _has_surrogate(value):
            raise _surrogate(field, field)
        body = value.encode("utf-8")
    else:
        raise InvalidPayload(
            f"{field} must be the raw request body (bytes)", field=field, type=type(value).__name__
        )
    payload_size(body, field=field)
    return body


def signature_header(value: object, *, field: str = "signature") -> str | None:
    """``None``, or a signature header's value: a string of at most ``MAX_HEADER_LENGTH``
    characters; else ``InvalidInput`` naming ``field``."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidInput(f"{field} must be a string", field=field, type=type(value).__name__)
    if len(value) > MAX_HEADER_LENGTH:
        raise InvalidInput(
            f"{field} is longer than {MAX_HEADER_LENGTH} characters", field=field, value="…"
        )
    return value


def json_document(
    raw: str | bytes, *, field: str = "payload", unique_names: bool = False
) -> dict[str, Any]:
    """Parse a JSON text with the one decoder every door uses
    (``providers.json_bodies.decode_json``: UTF-8 only, ``NaN`` and ``Infinity`` are not JSON;
    with ``unique_names``, no member name twice in one object) and check the result as
    ``payload``. Raises ``InvalidPayload`` for text that is not UTF-8, malformed, oversized
    or too deeply nested; never another exception."""
    payload_size(raw, field=field)
    return payload(decode_json(raw, field=field, unique_names=unique_names), field=field)


def _has_surrogate(text: str) -> bool:
    return not text.isascii() and _SURROGATE.search(text) is not None


def _surrogate(field: str, path: str) -> InvalidPayload:
    return InvalidPayload(
        f"{field} holds a lone surrogate (text that is not valid UTF-8)", field=field, at=path
    )


def _string_problem(value: object, max_length: int) -> str | None:
    if not isinstance(value, str):
        return "must be a string"
    if all(_blank(ch) for ch in value):
        return "is empty"  # or holds only characters that show nothing
    if len(value) > max_length:
        return f"is longer than {max_length} characters"
    if any(unicodedata.category(ch) == "Cc" for ch in value):
        return "holds a control character"
    if _has_surrogate(value):
        return "holds a lone surrogate (text that is not valid UTF-8)"
    return None


_SHOWS_NOTHING: Final = frozenset({"Cf", "Mn", "Me", "Zl", "Zp", "Zs"})
_FILLERS: Final = frozenset("\u115f\u1160\u3164\uffa0\u2800")
"""Hangul fillers (Default_Ignorable, yet category Lo) and the blank Braille pattern."""
_DEFAULT_IGNORABLE_TAIL: Final = range(0xE0000, 0xE1000)
"""Tags and variation selectors past the BMP (Default_Ignorable, some unassigned: Cn)."""


def _blank(ch: str) -> bool:
    """True for a character that shows nothing on its own: whitespace, a Unicode
    Default_Ignorable code point (https://www.unicode.org/reports/tr44/#Default_Ignorable_Code_Point:
    format characters, variation selectors, Hangul fillers), the blank Braille pattern, or a
    combining mark with nothing to combine with."""
    return (
        ch.isspace()
        or unicodedata.category(ch) in _SHOWS_NOTHING
        or ch in _FILLERS
        or ord(ch) in _DEFAULT_IGNORABLE_TAIL
    )


_INVISIBLE: Final = frozenset({"Cf", "Zl", "Zp"})


def _lookalike_problem(value: str) -> str | None:
    """Why an id could be confused with another that looks the same, or None."""
    if value != value.strip():
        return "has leading or trailing whitespace"
    if any(unicodedata.category(ch) in _INVISIBLE for ch in value):
        return "holds an invisible format character or a line separator"
    if not unicodedata.is_normalized("NFC", value):
        return "is not in Unicode NFC form (normalize it with unicodedata.normalize('NFC', …))"
    return None


def _shown(value: object) -> str:
    """The refused value as an error may repeat it: a string cut to a readable length, or
    only the type of anything else (``<int>``)."""
    if isinstance(value, str):
        cut = value if len(value) <= _SHOWN_CHARACTERS else value[:_SHOWN_CHARACTERS] + "…"
        return cut.encode("utf-8", "backslashreplace").decode("utf-8")  # a surrogate, escaped
    return f"<{type(value).__name__}>"

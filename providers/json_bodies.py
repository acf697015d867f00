"""JSON as every door reads it: one decoder and one check of what a JSON value may hold.

Refundry takes JSON through several doors: a file or stdin given to ``refundry classify``,
a ``dict`` given to the Python API (``workers.client``), a provider's status answer. Each goes
through :func:`decode_json` (text) or :func:`check_tree` (a value already decoded), so each
refuses the same bodies the same way, with ``InvalidPayload`` (``ledger.errors``) naming the
field and never repeating the body, which may hold secrets:

- text that is not UTF-8 (RFC 8259 §8.1: JSON exchanged between systems is UTF-8; a leading
  byte order mark may be ignored, and is). Python's ``json`` would guess UTF-16 or UTF-32
  from the first bytes instead; a NUL character, which JSON text never holds unescaped and
  UTF-16 or UTF-32 text always does, is refused as not UTF-8 either;
- ``NaN``, ``Infinity`` and ``-Infinity``, which Python's ``json`` accepts but JSON does not,
  and numbers that overflow to an infinite float;
- a whole number of more than :data:`MAX_NUMBER_DIGITS` digits. No id, count or amount any
  provider sends comes near; Python refuses to convert one of more than 4,300 digits with a
  ``ValueError`` that would escape as a traceback;
- a string or key holding a lone UTF-16 surrogate (``"\\ud800"``): valid JSON syntax, but not
  Unicode text (RFC 8259 §8.2 leaves its meaning undefined), which no UTF-8 encoder (the
  ledger's database included) can store;
- nesting deeper than :data:`MAX_DEPTH` levels; text nested past Python's recursion limit is
  refused the same way, before it can raise ``RecursionError``;
- (:func:`check_tree` only, for values built in Python) keys that are not strings and values
  that are not JSON (a ``set``, ``bytes``, a ``datetime`` …).

The standard library's ``json`` parses; only these limits are Refundry's own.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from typing import Any, Final

from ledger.errors import InvalidPayload

__all__ = ["MAX_DEPTH", "MAX_NUMBER_DIGITS", "check_tree", "decode_json"]

MAX_DEPTH: Final = 32
"""Levels of nesting a JSON value may have; real provider payloads have fewer than ten."""
MAX_NUMBER_DIGITS: Final = 100
"""Digits a whole number may have."""

_LIMIT: Final = 10**MAX_NUMBER_DIGITS
_SHOWN_PATH = 64  # how much of the path to a refused value an error repeats
_SURROGATE: Final = re.compile("[\ud800-\udfff]")
"""A surrogate code point in a ``str``: a properly paired escape decodes to one code point
above U+FFFF, so any surrogate left is a lone one."""
_BOM: Final = "\ufeff"


class _NotJson(ValueError):
    """Raised by the decoder's hooks; turned into ``InvalidPayload`` naming the field."""


def decode_json(raw: str | bytes, *, field: str = "payload", unique_names: bool = False) -> Any:
    """The JSON value in ``raw`` (UTF-8 bytes or text), checked by :func:`check_tree`.

    Returns a ``dict``, ``list``, ``str``, ``int``, ``float``, ``bool`` or ``None``; raises
    ``InvalidPayload`` naming ``field`` for text that is not UTF-8, not JSON, or not within
    the rules of this module. With ``unique_names`` an object holding a member name twice is
    refused too (RFC 8259 §4: names SHOULD be unique, and parsers disagree on which one
    wins, so a proxy or audit log could read another request than ours): for requests
    Refundry's own API is sent, never for a provider's deliveries. Never raises anything else.
    """
    if isinstance(raw, bytes | bytearray):
        try:
            text = bytes(raw).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InvalidPayload(
                f"{field} is not UTF-8 text", field=field, at_byte=exc.start
            ) from None
    else:
        text = raw
    if "\x00" in text:  # never in JSON text, always in UTF-16 or UTF-32 text of ASCII
        raise InvalidPayload(
            f"{field} is not UTF-8 text (it holds NUL characters, as UTF-16 does)", field=field
        )
    try:
        value = json.loads(
            text.removeprefix(_BOM),
            parse_constant=_no_constant,
            parse_int=_whole_number,
            object_pairs_hook=_unique_object if unique_names else None,
        )
    except RecursionError:
        raise _too_deep(field) from None
    except _NotJson as exc:
        raise InvalidPayload(f"{field} is not strict JSON: {exc}", field=field) from None
    except json.JSONDecodeError as exc:
        raise InvalidPayload(f"malformed JSON: {exc}", field=field) from None
    check_tree(value, field=field)
    return value


def _unique_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    value = dict(pairs)
    if len(value) != len(pairs):  # the name is not repeated: it may be a secret's
        raise _NotJson("an object holds a member name twice")
    return value


def check_tree(root: object, *, field: str = "payload", max_depth: int = MAX_DEPTH) -> None:
    """Refuse the first node of ``root`` that JSON cannot carry (see the module's list) with
    ``InvalidPayload`` naming ``field`` and the path to the node. Walks without recursion, so
    a hostile depth cannot exhaust the stack."""
    stack: list[tuple[object, int, str]] = [(root, 1, field)]
    while stack:
        node, depth, path = stack.pop()
        if isinstance(node, Mapping | list | tuple) and depth > max_depth:
            raise _too_deep(field, max_depth)
        if isinstance(node, Mapping):
            for key, child in node.items():
                if not isinstance(key, str):
                    raise InvalidPayload(
                        f"{field} has a key that is not a string",
                        field=field,
                        at=path,
                        type=type(key).__name__,
                    )
                _check_text(key, field, path)
                stack.append((child, depth + 1, f"{path}.{key}"[:_SHOWN_PATH]))
        elif isinstance(node, list | tuple):
            stack.extend((child, depth + 1, f"{path}[{i}]") for i, child in enumerate(node))
        elif isinstance(node, str):
            _check_text(node, field, path)
        elif isinstance(node, bool) or node is None:
            continue
        elif isinstance(node, int):
            if not -_LIMIT < node < _LIMIT:
                raise InvalidPayload(
                    f"{field} holds a number of more than {MAX_NUMBER_DIGITS} digits",
                    field=field,
                    at=path,
                )
        elif isinstance(node, float):
            if not math.isfinite(node):
                raise InvalidPayload(
                    f"{field} holds NaN or Infinity, which JSON does not allow",
                    field=field,
                    at=path,
                )
        else:
            raise InvalidPayload(
                f"{field} holds a value JSON cannot represent",
                field=field,
                at=path,
                type=type(node).__name__,
            )


def _check_text(text: str, field: str, path: str) -> None:
    if _SURROGATE.search(text) is not None:
        raise InvalidPayload(
            f"{field} holds text that is not Unicode (a lone surrogate)", field=field, at=path
        )


def _too_deep(field: str, maximum: int = MAX_DEPTH) -> InvalidPayload:
    return InvalidPayload(f"{field} is nested too deeply", field=field, maximum=maximum)


def _no_constant(name: str) -> Any:
    raise _NotJson(f"{name} is not JSON")


def _whole_number(digits: str) -> int:
    if len(digits.lstrip("-")) > MAX_NUMBER_DIGITS:
        raise _NotJson(f"a number has more than {MAX_NUMBER_DIGITS} digits")
    return int(digits)

"""Kind 4 (found by a fresh tester after issue 9): the JSON doors refuse what JSON cannot carry
with ``InvalidPayload``, never another exception.

The Python API's payload rule (``workers.validation.payload``) and the JSON text rule
(``workers.validation.json_document``, behind ``refundry classify``) take the same inputs a
hostile or broken body holds: text that is not UTF-8, numbers longer than Python converts,
lone surrogates, nesting past the recursion limit. A provider's status answer is read by the
same decoder. The command's side is in ``tests/acceptance/test_cli_refusals.py``.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger.errors import InvalidPayload
from providers.status_http import json_object
from workers import validation

TEXTS: list[tuple[str, bytes | str, str]] = [
    ("latin-1", b'{"status": "caf\xe9"}', "not UTF-8"),
    ("utf-16", '{"status": "OK"}'.encode("utf-16-le"), "not UTF-8"),
    ("utf-32-with-bom", '{"status": "OK"}'.encode("utf-32"), "not UTF-8"),
    ("5000-digit-number", b'{"code": ' + b"9" * 5000 + b"}", "digits"),
    ("lone-surrogate-escape", '{"id": "\\ud800"}', "surrogate"),
    ("lone-surrogate-raw", '{"id": "\ud800"}', "surrogate"),
    ("100000-levels", "[" * 100_000 + "]" * 100_000, "nested too deeply"),
    ("nan", '{"status": NaN}', "NaN is not JSON"),
]


@pytest.mark.parametrize(("raw", "problem"), [c[1:] for c in TEXTS], ids=[c[0] for c in TEXTS])
def test_json_text_door_refuses_undecodable_input(raw: bytes | str, problem: str) -> None:
    with pytest.raises(InvalidPayload) as refused:
        validation.json_document(raw)
    assert problem in str(refused.value)
    assert refused.value.fields["field"] == "payload"
    assert "\n" not in str(refused.value) and len(str(refused.value)) < 300


OBJECTS: list[tuple[str, dict[str, Any], str]] = [
    ("huge-integer", {"code": 10**5000}, "digits"),
    ("huge-negative-integer-in-a-list", {"seeds": [1, -(10**200)]}, "digits"),
    ("lone-surrogate-value", {"id": "\ud800"}, "surrogate"),
    ("lone-surrogate-key", {"\udfff": 1}, "surrogate"),
]


@pytest.mark.parametrize(
    ("value", "problem"), [c[1:] for c in OBJECTS], ids=[c[0] for c in OBJECTS]
)
def test_python_api_payload_rule_refuses_what_json_cannot_carry(
    value: dict[str, Any], problem: str
) -> None:
    with pytest.raises(InvalidPayload) as refused:
        validation.payload(value, field="event")
    assert problem in str(refused.value)
    assert refused.value.fields["field"] == "event"


def test_a_leading_byte_order_mark_is_ignored_as_the_json_rfc_allows() -> None:
    assert validation.json_document(b'\xef\xbb\xbf{"status": "OK"}') == {"status": "OK"}
    assert validation.json_document('\ufeff{"status": "OK"}') == {"status": "OK"}


@given(st.integers(min_value=-(10**100) + 1, max_value=10**100 - 1))
def test_every_number_up_to_a_hundred_digits_comes_through_both_doors(number: int) -> None:
    assert validation.payload({"n": number}) == {"n": number}
    assert validation.json_document(f'{{"n": {number}}}') == {"n": number}


@pytest.mark.parametrize(("raw", "problem"), [c[1:] for c in TEXTS if isinstance(c[1], bytes)])
def test_a_status_answer_json_cannot_carry_is_no_answer(raw: bytes, problem: str) -> None:
    assert json_object(httpx.Response(200, content=raw)) is None
    deep = ("[" * 100_000 + "]" * 100_000).encode()
    assert json_object(httpx.Response(200, content=deep)) is None

"""The rules every door shares (``workers.validation``), as properties: each accepted value
comes back unchanged, and each refusal is the documented error naming the field. The rules
are restated here, not asked of the module."""

from __future__ import annotations

import json
import math
import unicodedata
from collections import UserDict
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger.errors import InvalidAmount, InvalidIdentifier, InvalidInput, InvalidPayload
from workers import validation

finite = st.floats(allow_nan=False, allow_infinity=False)
json_leaf = st.none() | st.booleans() | st.integers() | finite | st.text()
json_value = st.recursive(
    json_leaf,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)
json_object = st.dictionaries(st.text(), json_value, max_size=6)


@given(json_object)
def test_any_json_object_within_the_caps_comes_back_equal(payload: dict[str, Any]) -> None:
    copy = validation.payload(payload)
    assert copy == payload and copy is not payload


@given(json_object, st.sampled_from([math.nan, math.inf, -math.inf]), st.text())
def test_a_non_finite_number_anywhere_is_refused(
    payload: dict[str, Any], bad: float, key: str
) -> None:
    tree: dict[str, Any] = {"outer": [payload, {key: bad}]}
    with pytest.raises(InvalidPayload) as caught:
        validation.payload(tree, field="event")
    assert caught.value.fields == {"field": "event", "at": f"event.outer[1].{key}"[:64]}


def _acceptable_id(text: str) -> bool:
    """The identifier rule, restated."""
    return (
        0 < len(text) <= 255
        and text == text.strip()
        and not any(ord(c) < 32 or 127 <= ord(c) < 160 for c in text)
        and not any(0xD800 <= ord(c) <= 0xDFFF for c in text)
        and not any(unicodedata.category(c) in ("Cf", "Zl", "Zp") for c in text)
        and unicodedata.normalize("NFC", text) == text
        and any(_visible(c) for c in text)
    )


def _visible(c: str) -> bool:
    """Shows something: not whitespace, a default-ignorable, a filler or a lone mark."""
    invisible = ("Cf", "Mn", "Me", "Zs", "Zl", "Zp")
    return not (
        c.isspace()
        or unicodedata.category(c) in invisible
        or c in "\u115f\u1160\u3164\uffa0\u2800"
        or 0xE0000 <= ord(c) <= 0xE0FFF
    )


any_text = st.text(st.characters(exclude_categories=()), max_size=300)  # lone surrogates too
lookalikes = st.lists(
    st.sampled_from(
        ["g", "e", "\u0301", "\u00e9", "\u200b", "\u200d", "\ufeff", "\u202e", "\u2028"]
    ),
    min_size=1,
    max_size=6,
).map("".join)


@given(any_text | lookalikes)
def test_an_identifier_is_accepted_exactly_when_the_rule_holds(text: str) -> None:
    if _acceptable_id(text):
        assert validation.identifier(text, field="generation_id") == text
    else:
        with pytest.raises(InvalidIdentifier) as caught:
            validation.identifier(text, field="generation_id")
        assert caught.value.fields["field"] == "generation_id"


@given(st.integers())
def test_credits_are_accepted_exactly_from_one_to_the_maximum(value: int) -> None:
    if 1 <= value <= 10**12:
        assert validation.credits(value) == value
    else:
        with pytest.raises(InvalidAmount):
            validation.credits(value)


@given(st.floats() | st.booleans() | st.text() | st.none() | st.decimals())
def test_credits_that_are_not_ints_are_refused_whatever_their_value(value: object) -> None:
    with pytest.raises(InvalidAmount) as caught:
        validation.credits(value)
    assert caught.value.fields["field"] == "credits"


python_leaf = (
    json_leaf
    | any_text
    | st.sampled_from([4300, -4300, 4299]).map(lambda exp: (-1 if exp < 0 else 1) * 10 ** abs(exp))
    | st.just(math.nan)
    | st.builds(UserDict, st.dictionaries(st.text(), st.integers(), max_size=2))
)
python_tree = st.recursive(
    python_leaf,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(any_text, inner, max_size=3),
    max_leaves=12,
)


@given(st.dictionaries(any_text, python_tree, max_size=4) | python_tree)
def test_any_python_value_is_a_strict_json_copy_or_refused_as_invalid_payload(value: Any) -> None:
    """Whatever Python can hold (lone surrogates, integers too long to print, mappings that
    are not dicts, NaN): the payload rule answers with a copy UTF-8 JSON can carry, or with
    ``InvalidPayload``; never another exception."""
    try:
        copy = validation.payload(value)
    except InvalidPayload as refused:
        assert refused.fields["field"] == "payload"
        return
    assert copy == value
    json.dumps(copy, ensure_ascii=False).encode("utf-8")


@pytest.mark.parametrize(
    "blank",
    [
        "\u3164",
        "\u1160",
        "\uffa0",
        "\u2800",
        "\u034f",
        "\ufe0f",
        "\u17b4",
        "\u0301",
        " \u3164 \u200b\u2800 ",
        "\U000e0020",
    ],
)
def test_kind_blank_reason_of_invisible_fillers_is_refused(blank: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        validation.text(blank, field="reason")
    assert caught.value.fields["field"] == "reason"
    assert "empty" in str(caught.value)


@pytest.mark.parametrize("reason", ["e\u0301", "\u3164x", "\u2800 braille \u2801"])
def test_kind_blank_reason_with_a_visible_character_is_kept(reason: str) -> None:
    assert validation.text(reason, field="reason") == reason

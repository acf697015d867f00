"""Inputs for the fuzz tests: JSON of any shape, mutants of real payloads, raw bytes, text
with the characters parsers trip on, and HTTP headers."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import strategies as st

NASTY = st.sampled_from(
    [
        "",
        " ",
        "\x00",
        "\ud800",
        "\u202e",
        "\ufeff",
        "NaN",
        "Infinity",
        "-1",
        "1e309",
        "9" * 120,
        "null",
        "[]",
        "{}",
        "status",
        "succeeded",
        "failed",
        "COMPLETED",
        "ERROR",
        "t=1,v1=00",
        "whsec_",
        "v1,",
        "%s%n",
        "\\u0000",
    ]
)


def json_values(max_leaves: int = 24) -> st.SearchStrategy[Any]:
    """Any JSON value (floats without NaN: a JSON document cannot hold one)."""
    leaves = (
        st.none()
        | st.booleans()
        | st.integers()
        | st.floats(allow_nan=False, allow_infinity=False)
        | st.text(max_size=16)
        | NASTY
    )
    return st.recursive(
        leaves,
        lambda inner: (
            st.lists(inner, max_size=5)
            | st.dictionaries(st.text(max_size=10) | NASTY, inner, max_size=5)
        ),
        max_leaves=max_leaves,
    )


def json_objects() -> st.SearchStrategy[dict[str, Any]]:
    return st.dictionaries(st.text(max_size=10) | NASTY, json_values(), max_size=8)


@st.composite
def mutated(draw: st.DrawFn, document: Any) -> Any:
    """``document`` with fields dropped, replaced by any JSON, retyped, or added, at every
    depth."""

    def mutate(node: Any) -> Any:
        if isinstance(node, dict):
            out: dict[str, Any] = {}
            for key, value in node.items():
                action = draw(st.integers(0, 9))
                if action == 0:
                    continue
                out[key] = draw(json_values(8)) if action == 1 else mutate(value)
            if draw(st.integers(0, 5)) == 0:
                out[draw(st.text(max_size=8) | NASTY)] = draw(json_values(6))
            return out
        if isinstance(node, list):
            return [mutate(item) for item in node if draw(st.integers(0, 5))]
        if draw(st.integers(0, 4)) == 0:
            return draw(json_values(4))
        return node

    return mutate(document)


def raw_bodies() -> st.SearchStrategy[bytes]:
    """Bytes a sender could post: JSON, broken JSON, binary."""
    as_json = json_values().map(lambda v: json.dumps(v).encode())
    cut = as_json.flatmap(lambda b: st.integers(0, len(b)).map(lambda n: b[:n]))
    return st.one_of(as_json, cut, st.binary(max_size=256), st.text(max_size=64).map(str.encode))


def header_values() -> st.SearchStrategy[str]:
    """Header values as an HTTP client can send them (latin-1, no line breaks)."""
    text = st.text(
        st.characters(min_codepoint=0x20, max_codepoint=0xFF, blacklist_characters="\x7f"),
        max_size=80,
    )
    return text | NASTY.filter(lambda s: all(0x20 <= ord(c) <= 0xFF for c in s))

"""Whatever JSON arrives, a classifier answers with one of the six outcomes or refuses it.

Nothing else may escape ``classify``: no ``KeyError``, ``TypeError`` or ``AttributeError`` on a
strange shape. Two kinds of input: arbitrary JSON, and mutants of each provider's real shapes
(fields dropped, replaced by the provider's own status words or by random JSON, fields added),
which reach deep into the rules instead of stopping at "missing status".
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger.errors import Unclassifiable, UnknownProvider
from ledger.outcomes import Outcome
from providers.base import OPERATIONS as BASE_OPERATIONS
from providers.base import Classification
from providers.registry import ADAPTERS, PROVIDER_NAMES, classify, get_adapter
from tests.support.provider_shapes import COMMON, SKELETONS, WORDS

OPERATIONS: list[str | None] = [None, "?", *BASE_OPERATIONS]


def json_values() -> st.SearchStrategy[Any]:
    leaves = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12)
    return st.recursive(
        leaves,
        lambda inner: (
            st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
        ),
        max_leaves=16,
    )


@st.composite
def mutants(draw: st.DrawFn, provider: str) -> Any:
    """A skeleton of ``provider`` with fields dropped, replaced and added at every depth."""
    words = st.sampled_from(WORDS[provider] + COMMON)
    noise = words | json_values()

    def mutate(node: Any) -> Any:
        if isinstance(node, dict):
            out: dict[str, Any] = {}
            for key, value in node.items():
                action = draw(st.integers(0, 9))
                if action == 0:
                    continue  # the field is absent
                out[key] = draw(noise) if action == 1 else mutate(value)
            if draw(st.integers(0, 4)) == 0:
                out[draw(st.sampled_from([*node, "status"]) | st.text(max_size=6))] = draw(noise)
            return out
        if isinstance(node, list):
            return [mutate(item) for item in node if draw(st.integers(0, 5))]
        return draw(words) if draw(st.integers(0, 3)) == 0 else node

    return mutate(draw(st.sampled_from(SKELETONS[provider])))


def check(provider: str, payload: Any, operation: str | None) -> None:
    try:
        result = classify(provider, payload, operation)
    except Unclassifiable as refused:
        assert refused.fields.get("provider") == provider
        return
    assert isinstance(result, Classification)
    assert result.outcome in set(Outcome)
    assert isinstance(result.reason, str) and result.reason and "\n" not in result.reason
    assert result.provider_job_id is None or isinstance(result.provider_job_id, str)


PROPERTY = settings(
    max_examples=100, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)


@pytest.mark.parametrize("provider", PROVIDER_NAMES)
@PROPERTY
@given(data=st.data())
def test_arbitrary_json_is_classified_or_refused(provider: str, data: st.DataObject) -> None:
    payload = data.draw(json_values(), label="payload")
    check(provider, payload, data.draw(st.sampled_from(OPERATIONS), label="operation"))


@pytest.mark.parametrize("provider", PROVIDER_NAMES)
@PROPERTY
@given(data=st.data())
def test_mutated_provider_payload_is_classified_or_refused(
    provider: str, data: st.DataObject
) -> None:
    payload = data.draw(mutants(provider), label="payload")
    check(provider, payload, data.draw(st.sampled_from(OPERATIONS), label="operation"))


@pytest.mark.parametrize("provider", PROVIDER_NAMES)
@PROPERTY
@given(payload=json_values().filter(lambda value: not isinstance(value, dict)))
def test_non_object_payload_is_refused(provider: str, payload: Any) -> None:
    with pytest.raises(Unclassifiable):
        classify(provider, payload)


@pytest.mark.parametrize("provider", PROVIDER_NAMES)
def test_skeletons_are_classified(provider: str) -> None:
    for skeleton in SKELETONS[provider]:
        assert classify(provider, skeleton).outcome in set(Outcome)


def test_every_provider_has_skeletons_here() -> None:
    assert set(SKELETONS) == set(WORDS) == set(PROVIDER_NAMES)


def test_registry_names_match_adapters() -> None:
    assert tuple(sorted(ADAPTERS)) == PROVIDER_NAMES
    assert all(get_adapter(name).name == name for name in PROVIDER_NAMES)


@pytest.mark.parametrize("name", ["", "openai ", "Kling", "midjourney"])
def test_unknown_provider_is_refused(name: str) -> None:
    with pytest.raises(UnknownProvider) as caught:
        get_adapter(name)
    assert caught.value.fields == {"provider": name}
    with pytest.raises(UnknownProvider):
        classify(name, {"status": "succeeded"})

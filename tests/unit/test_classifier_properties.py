"""Whatever JSON arrives, a classifier answers with one of the six outcomes or refuses it.

Nothing else may escape ``classify``: no ``KeyError``, ``TypeError`` or ``AttributeError`` on a
strange shape, and no guessing on a payload that has no status.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger.errors import Unclassifiable, UnknownProvider
from ledger.outcomes import Outcome
from providers.base import Classification
from providers.registry import ADAPTERS, PROVIDER_NAMES, classify, get_adapter

OPERATIONS = [
    None,
    "video",
    "image",
    "music",
    "lyrics",
    "stems",
    "extend",
    "add_vocals",
    "add_instrumental",
    "voice_clone",
    "wav_export",
    "midi_export",
    "training",
    "?",
]

# The field names and values each provider's rules look at, so that generated payloads reach
# deep into the rules instead of stopping at "missing status".
VOCABULARY: dict[str, tuple[list[str], list[Any]]] = {
    "fal": (
        [
            "status",
            "payload",
            "error",
            "error_type",
            "detail",
            "type",
            "msg",
            "payload_error",
            "request_id",
            "gateway_request_id",
            "video",
            "videos",
            "images",
            "image",
            "audio",
            "url",
            "diffusers_lora_file",
            "has_nsfw_concepts",
            "nsfw_content_detected",
        ],
        [
            "IN_QUEUE",
            "IN_PROGRESS",
            "COMPLETED",
            "OK",
            "ERROR",
            "client_cancelled",
            "content_policy_violation",
            "request_timeout",
            "https://v3.fal.media/a.mp4",
            "https://x.example/None.mp3",
            [True],
            [False],
        ],
    ),
    "kling": (
        [
            "code",
            "message",
            "data",
            "task_id",
            "task_status",
            "task_status_msg",
            "task_result",
            "videos",
            "images",
            "url",
            "watermark_url",
            "id",
            "status",
            "outputs",
            "type",
            "mp3_url",
        ],
        [
            0,
            1301,
            1303,
            5000,
            "submitted",
            "processing",
            "succeed",
            "succeeded",
            "failed",
            "video",
            "image",
            "audio",
            "风控",
            "https://cdn.klingai.example/a.mp4",
        ],
    ),
}


def json_values() -> st.SearchStrategy[Any]:
    leaves = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12)
    return st.recursive(
        leaves,
        lambda inner: (
            st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
        ),
        max_leaves=16,
    )


def shaped(provider: str) -> st.SearchStrategy[dict[str, Any]]:
    """Objects built from the provider's own field names and status values, nested."""
    keys, values = VOCABULARY.get(provider, ([], []))
    key = st.sampled_from(keys) | st.text(max_size=6) if keys else st.text(max_size=6)
    value = st.sampled_from(values) | json_values() if values else json_values()
    nested = st.recursive(
        value,
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(key, inner, max_size=5),
        max_leaves=20,
    )
    return st.dictionaries(key, nested, max_size=8)


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
    max_examples=150, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
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
def test_provider_shaped_json_is_classified_or_refused(provider: str, data: st.DataObject) -> None:
    payload = data.draw(shaped(provider), label="payload")
    check(provider, payload, data.draw(st.sampled_from(OPERATIONS), label="operation"))


@pytest.mark.parametrize("provider", PROVIDER_NAMES)
@PROPERTY
@given(payload=json_values().filter(lambda value: not isinstance(value, dict)))
def test_non_object_payload_is_refused(provider: str, payload: Any) -> None:
    with pytest.raises(Unclassifiable):
        classify(provider, payload)


def test_every_provider_is_shaped_in_this_test() -> None:
    assert set(VOCABULARY) == set(PROVIDER_NAMES)


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

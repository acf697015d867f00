"""Fuzzing what the providers' status APIs answer: any status, body and wait hint
(``Retry-After`` as seconds or an HTTP date, ``retry-after-ms``, ``openai-poll-after-ms``)
is read into an error of Refundry's tree, a code, a body or a wait, never another
exception; a thin OpenAI event names a video or nothing."""

from __future__ import annotations

import contextlib
from typing import Any

import httpx
from hypothesis import given
from hypothesis import strategies as st

from ledger.errors import RefundryError
from providers.openai_api import thin_event_job_id
from providers.pollers import envelope_code
from providers.status_http import _server_hint_s, error_code, json_object, raise_for_status
from tests.fuzz.conftest import count
from tests.fuzz.strategies import header_values, json_values, mutated, raw_bodies

DATES = st.one_of(
    st.datetimes().map(lambda d: d.strftime("%a, %d %b %Y %H:%M:%S GMT")),
    st.builds(
        "{}, {:02d} {} {} {:02d}:{:02d}:{:02d} {}".format,
        st.sampled_from(["Mon", "Sun", "Xyz"]),
        st.integers(0, 99),
        st.sampled_from(["Jan", "Feb", "Foo"]),
        st.integers(0, 100_000),
        st.integers(0, 99),
        st.integers(0, 99),
        st.integers(0, 99),
        st.sampled_from(["GMT", "+9999", "-2400", "+0100", "UT", ""]),
    ),
)
HINTS = st.dictionaries(
    st.sampled_from(["retry-after", "retry-after-ms", "openai-poll-after-ms"]),
    header_values() | DATES | st.floats().map(str) | st.integers().map(str),
    max_size=3,
)


@given(st.integers(100, 599), raw_bodies(), HINTS)
def test_a_status_answer_is_read_or_refused_with_refundrys_error(
    status: int, body: bytes, hints: dict[str, str]
) -> None:
    count("status_http.answer")
    headers = [(name, value.encode("latin-1", "replace")) for name, value in hints.items()]
    response = httpx.Response(status, content=body, headers=headers)
    with contextlib.suppress(RefundryError):
        raise_for_status(response, provider="kling", job_id="job-1")
    assert json_object(response) is None or isinstance(json_object(response), dict)
    code = error_code(response)
    assert code is None or isinstance(code, str | int)
    envelope = envelope_code(response)
    assert envelope is None or isinstance(envelope, int)
    wait = _server_hint_s(response.headers)
    assert wait is None or wait >= 0


THIN = {"id": "evt_1", "object": "event", "type": "video.failed", "data": {"id": "video_1"}}


@given(st.one_of(mutated(THIN), json_values()))
def test_a_thin_openai_event_names_a_video_or_nothing(event: Any) -> None:
    count("openai.thin_event")
    found = thin_event_job_id(event)
    assert found is None or (isinstance(found, str) and found.strip())

"""Schemathesis against the real server, from the OpenAPI document it serves: requests
generated from each operation's schemas, and requests breaking them, are answered with a
documented status, a documented media type and a body of the documented schema, never a
5xx; a request breaking a schema is refused with a 4xx. A short run by default;
``REFUNDRY_FUZZ_EXAMPLES`` (per operation and mode) for a longer one.

Schemathesis' own pytest entry (``from_fixture``) does not run on this pytest, so each
operation's strategies are driven by hypothesis here."""

from __future__ import annotations

import os

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    negative_data_rejection,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.support.api import KEY_OLD, Api
from workers.api_routes import API_ROUTES

EXAMPLES = int(os.environ.get("REFUNDRY_FUZZ_EXAMPLES", "15"))
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
    negative_data_rejection,
]


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_fuzzed_requests_are_answered_as_the_document_says(api: Api, mode: GenerationMode) -> None:
    schema = schemathesis.openapi.from_url(f"{api.web.url}/v1/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    labels = {operation.label for operation in operations}
    assert {route.method + " " + route.path for route in API_ROUTES} <= labels, labels
    auth = {"Authorization": f"Bearer {KEY_OLD}"}
    for operation in operations:
        if mode == GenerationMode.NEGATIVE and operation.method.upper() == "HEAD":
            continue  # its GET is broken the same ways; /v1/openapi.json has nothing to break

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
        def answered(case: schemathesis.Case) -> None:
            case.call_and_validate(base_url=api.web.url, headers=auth, checks=CHECKS)

        answered()

"""A job id is checked before it is put into a URL: no request with our key leaves for
another path of the provider's API."""

from __future__ import annotations

from collections.abc import Mapping

import pytest

from providers.job_ids import JOB_ID_MAX_CHARS, InvalidJobId, check_job_id
from providers.status_http import StatusClient
from tests.support.scripted_http import Reply, ScriptedHTTPServer


@pytest.mark.parametrize(
    "job_id",
    [
        "video_68d7512d07848190b3e45da0ecbe",
        "ufawqhfynnddngldkgtslldrkq",
        "8600000001",
        "2d6b1c0e-0f4e-4c3a-9f5e-0d1b2c3d4e5f",
        "5c79f7b7a4bc4f6d8f1a0f0e0a0b0c0d",
    ],
)
def test_documented_job_ids_pass(job_id: str) -> None:
    assert check_job_id("any", job_id) == job_id


@pytest.mark.parametrize(
    "job_id",
    [
        ".",
        "..",
        "../predictions",
        "a/b",
        "%2e%2e",
        "a b",
        "",
        "-x",
        "x" * (JOB_ID_MAX_CHARS + 1),
        "video_1?x=1",
        "video_1#f",
        "ü",
    ],
)
def test_dot_segments_and_other_path_material_are_refused(job_id: str) -> None:
    with pytest.raises(InvalidJobId) as caught:
        check_job_id("replicate", job_id)
    assert caught.value.permanent


def test_the_status_client_sends_nothing_for_a_refused_id() -> None:
    def every_path(path: str, query: Mapping[str, str]) -> str:
        return path

    with ScriptedHTTPServer(every_path, lambda key: Reply(200, {"id": key})) as api:
        client = StatusClient(f"{api.url}/v1", {"Authorization": "Bearer k"})
        with pytest.raises(InvalidJobId):
            client.get("/predictions/..", provider="replicate", job_id="..")
        client.get("/predictions/abc", provider="replicate", job_id="abc")
        client.close()
        assert [seen.path for seen in api.seen()] == ["/v1/predictions/abc"]

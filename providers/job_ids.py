"""The shape of a provider's job id, checked before the id is put into any URL.

The ids Refundry puts into status paths are opaque tokens of ASCII letters, digits, ``-``
and ``_``: OpenAI's ``video_…`` ids (``GET /videos/{video_id}``,
https://developers.openai.com/api/docs/guides/video-generation), Replicate's prediction and
training ids, Kling's task ids (``GET /v1/videos/text2video/{task_id}``), the Suno-style
``taskId`` (https://docs.sunoapi.org/suno-api/get-music-generation-details.md) and fal's
request ids (https://docs.fal.ai/documentation/model-apis/inference/queue). An id outside
that shape (``.``, ``..``, a ``/``, percent signs, spaces) could make an HTTP client send our
API key to another path of the API (httpx collapses dot segments after quoting): it is
refused before any request is built.
"""

from __future__ import annotations

import re
from typing import Final

from ledger.errors import InvalidJobId

__all__ = ["JOB_ID_MAX_CHARS", "InvalidJobId", "check_job_id"]

JOB_ID_MAX_CHARS: Final = 128
_JOB_ID: Final = re.compile(rf"[A-Za-z0-9][A-Za-z0-9_-]{{0,{JOB_ID_MAX_CHARS - 1}}}")


def check_job_id(provider: str, job_id: str) -> str:
    """Return ``job_id`` when it is a safe, documented-shape id; else raise ``InvalidJobId``."""
    if not isinstance(job_id, str) or _JOB_ID.fullmatch(job_id) is None:
        raise InvalidJobId(provider=provider, job_id=str(job_id)[:JOB_ID_MAX_CHARS])
    return job_id

"""Replicate predictions and trainings: polls, webhooks and create-time errors.

Shape (replicate.com/docs/topics/predictions/lifecycle, …/webhooks/receive-webhook): ``id``,
``status`` starting | processing | succeeded | failed | canceled | aborted, ``output`` (any
JSON, null until done), ``error`` (a plain string, no code). ``aborted`` (deadline passed before
the prediction started) is a cancellation like ``canceled``. Webhooks send the same object for
``start``, ``output`` and ``logs`` events, so a ``processing`` body may already hold partial
output and is still pending. Moderation is only visible in the error text ("flagged as
sensitive … (E005)", "NSFW content detected").

API errors are RFC 7807 bodies whose ``status`` is the HTTP code (an integer), or a bare
``{"detail": "Request was throttled…"}``; a throttled create has no prediction yet.

Trainings (``GET /v1/trainings/{id}``) share the statuses; their ``output`` is
``{"version", "weights"}``, and the new ``version`` is documented as the deliverable. Outputs
are judged in ``output`` only (:mod:`providers.outputs`): synchronous answers (``Prefer:
wait``) carry ``data:`` URIs there (replicate-python#382), and ``urls.get``/``urls.cancel``/
``urls.stream`` are the API's own links, never output. A language model's output is text, a
string or a list of tokens (https://github.com/replicate/replicate-python/issues/143): the
deliverable of a text operation (lyrics), never of a media one.

Decision on removed outputs: Replicate deletes the inputs, outputs and files of an API
prediction an hour after it ends (https://replicate.com/docs/topics/predictions/
data-retention) and then answers ``output: null`` with ``data_removed: true``. A succeeded
prediction whose output was removed had an output: the customer received it, or could have,
before the deadline. A successful generation is never refunded and refunding delivered work
is the costliest error (DESIGN), so such a body is ``succeeded``, never ``empty_success``; a
null output without ``data_removed`` stays ``empty_success``.
"""

from __future__ import annotations

import re
from typing import Any, Final, Unpack
from urllib.parse import quote

from ledger.outcomes import Outcome
from providers.base import Classification
from providers.common import (
    Adapter,
    Payload,
    as_int,
    job_id,
    refuse,
    require_status,
    short,
    status_in,
    text,
)
from providers.outputs import done, find_output
from providers.pollers import HTTPOptions, Poller, bearer
from providers.status_http import StatusClient

__all__ = ["ADAPTER", "NAME", "REPLICATE_BASE_URL", "ReplicatePoller"]

NAME: Final = "replicate"

STATUS: Final[dict[str, Outcome]] = {
    "starting": Outcome.PENDING,
    "processing": Outcome.PENDING,  # even with partial output
    "succeeded": Outcome.SUCCEEDED,  # only with a usable output
    "failed": Outcome.FAILED,  # moderated when the error text says so
    "canceled": Outcome.CANCELLED,
    "aborted": Outcome.CANCELLED,
}

MODERATION_TEXT: Final = re.compile(
    r"\bE005\b|flagged as sensitive|nsfw|content polic|safety (?:checker|filter)", re.IGNORECASE
)
THROTTLE_TEXT: Final = re.compile(r"throttled|rate limit", re.IGNORECASE)
TRAINING_IDS: Final = ("version",)
"""A training's ``output.version``: the model version it made, usable without the weights."""
REMOVED: Final = "output removed after the retention window (data_removed=true)"


def _rules(payload: Payload, operation: str | None) -> Classification:
    if not isinstance(payload.get("status"), str) and ("detail" in payload or "title" in payload):
        return _api_error(payload)
    job = job_id(payload, "id")
    status = require_status(payload, "status", NAME)
    outcome = status_in(STATUS, status, NAME, "status")
    decided = f"status={status!r}"
    if outcome is Outcome.SUCCEEDED:
        ids = TRAINING_IDS if operation == "training" else ()
        found = find_output(payload.get("output"), at="output", ids=ids, operation=operation)
        if found is None and payload.get("data_removed") is True:
            return Classification(Outcome.SUCCEEDED, f"{decided}, {REMOVED}", job)
        return done(decided, found, "output", job)
    if outcome is Outcome.FAILED:
        return _failed(decided, text(payload.get("error")), job)
    return Classification(outcome, decided, job)


def _failed(decided: str, error: str, job: str | None) -> Classification:
    moderated = MODERATION_TEXT.search(error) is not None
    outcome = Outcome.MODERATED if moderated else Outcome.FAILED
    return Classification(outcome, f"{decided}, error={short(error or None, 50)}", job)


def _api_error(payload: Payload) -> Classification:
    """An HTTP error body: no prediction exists (or none was returned)."""
    detail = payload.get("detail")
    code = as_int(payload.get("status"))
    message = text(detail) or text(payload.get("title"))
    if not message and code is None:
        raise refuse("missing status", NAME, field="status")
    if code == 429 or THROTTLE_TEXT.search(message):
        return Classification(Outcome.PENDING, f"detail={short(message, 50)}: retry the create")
    return _failed(f"HTTP status={code}", message, None)


ADAPTER: Final = Adapter(NAME, _rules)


# --------------------------------------------------------------------------- status poller


REPLICATE_BASE_URL: Final = "https://api.replicate.com"


class ReplicatePoller(Poller):
    """``GET /v1/predictions/{id}``: the prediction object itself."""

    name = "replicate"

    def __init__(
        self, api_token: str, base_url: str = REPLICATE_BASE_URL, **options: Unpack[HTTPOptions]
    ) -> None:
        super().__init__(StatusClient(base_url, bearer(api_token), **options))

    def _poll(self, job_id: str, operation: str | None) -> dict[str, Any]:
        kind = "trainings" if operation == "training" else "predictions"
        body = self._http.get_json(
            f"/v1/{kind}/{quote(job_id, safe='')}", provider=self.name, job_id=job_id
        )
        self._same_job(body.get("id"), job_id)
        return body

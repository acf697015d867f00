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

Where a provider documents a narrower shape, that shape is held: Replicate's prediction ids
are lowercase (https://replicate.com/docs/reference/http#predictions.get), so an id in upper
case is no Replicate job, only a look-alike of one.

Stripe's object ids (:func:`check_stripe_id`) are a documented prefix naming the object
(``cs_`` a Checkout Session, ``pi_`` a PaymentIntent, ``ch_`` a charge, ``re_`` a refund,
``dp_``/``du_`` a dispute, ``issfr_`` an early fraud warning, ``in_`` an invoice, ``sub_`` a
subscription, ``evt_`` an event…; https://docs.stripe.com/api/checkout/sessions/object,
https://docs.stripe.com/api/radar/early_fraud_warnings/object) then letters, digits and
``_``. ``.``, ``..`` and anything else never reach a Stripe URL.
"""

from __future__ import annotations

import re
from typing import Final

from ledger.errors import InvalidJobId

__all__ = [
    "JOB_ID_MAX_CHARS",
    "STRIPE_ID_PREFIXES",
    "InvalidJobId",
    "check_job_id",
    "check_stripe_id",
]

JOB_ID_MAX_CHARS: Final = 128
_JOB_ID: Final = re.compile(rf"[A-Za-z0-9][A-Za-z0-9_-]{{0,{JOB_ID_MAX_CHARS - 1}}}")
_SHAPES: Final = {
    "replicate": re.compile(rf"[a-z0-9][a-z0-9_-]{{0,{JOB_ID_MAX_CHARS - 1}}}"),
}
"""Providers documenting a narrower shape than ``_JOB_ID``."""

STRIPE_ID_PREFIXES: Final = frozenset(
    {
        "acct", "ba", "card", "cbtxn", "ch", "cn", "cs", "cus", "dp", "du", "evt", "ii", "il",
        "in", "issfr", "pi", "pm", "po", "price", "prod", "py", "pyr", "re", "seti", "si",
        "sub", "txn", "tr",
    }
)  # fmt: skip
"""The object prefixes Refundry may look up at Stripe (sessions, intents, charges, refunds,
disputes, fraud warnings, invoices, subscriptions, events and what they reference)."""
_STRIPE_ID: Final = re.compile(r"([a-z]{2,5})_[A-Za-z0-9_]{1,250}")


def check_job_id(provider: str, job_id: str) -> str:
    """Return ``job_id`` when it is a safe id of the shape ``provider`` documents; else
    raise ``InvalidJobId`` (permanent)."""
    shape = _SHAPES.get(provider, _JOB_ID)
    if not isinstance(job_id, str) or shape.fullmatch(job_id) is None:
        raise InvalidJobId(provider=provider, job_id=str(job_id)[:JOB_ID_MAX_CHARS])
    return job_id


def check_stripe_id(object_id: object, *, field: str = "id") -> str:
    """Return ``object_id`` when it is a Stripe object id (a known prefix, ``_``, then
    letters, digits and ``_``); else raise ``InvalidJobId`` (permanent) naming ``field``."""
    match = _STRIPE_ID.fullmatch(object_id) if isinstance(object_id, str) else None
    if match is None or match[1] not in STRIPE_ID_PREFIXES:
        raise InvalidJobId(
            "not a Stripe object id", provider="stripe", field=field, id=str(object_id)[:64]
        )
    return match[0]

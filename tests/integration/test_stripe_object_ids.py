"""A Stripe object id is checked against Stripe's documented shape (a known object prefix,
``_``, then letters, digits and ``_``) before any URL is built: ``.``, ``..`` and anything
else are refused as permanent invalid input, and nothing is requested with our key."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

import pytest

from ledger.errors import InvalidJobId
from providers.job_ids import check_stripe_id
from providers.stripe_api import StripeAPI
from tests.support.scripted_http import Reply, ScriptedHTTPServer

BAD_IDS = [
    ".",
    "..",
    "",
    "cs_..",
    "../v1",
    "cs_a/b",
    "cs_a b",
    "xx_abc",
    "cs_",
    "cs_a%2e",
    "cs_\u0430",
]
CALLS: dict[str, Callable[[StripeAPI, str], Any]] = {
    "session": lambda api, i: api.retrieve("checkout.session", i),
    "line items": lambda api, i: api.checkout_line_items(i),
    "charge": lambda api, i: api.retrieve("charge", i),
    "subscription": lambda api, i: api.retrieve("subscription", i),
    "fraud warning": lambda api, i: api.retrieve("radar.early_fraud_warning", i),
    "dispute": lambda api, i: api.retrieve("dispute", i),
    "refunds of a charge": lambda api, i: api.charge_refunds(i),
    "session of an intent": lambda api, i: api.checkout_session_of(i),
    "refund": lambda api, i: api.refund_payment(
        i, amount=None, reason="duplicate_charge", idempotency_key="k:1"
    ),
}


@pytest.fixture(scope="module")
def stripe_paths() -> Iterator[tuple[StripeAPI, ScriptedHTTPServer]]:
    def every_path(path: str, query: Mapping[str, str]) -> str:
        return path

    with (
        ScriptedHTTPServer(every_path, lambda key: Reply(404, {"error": {}})) as server,
        StripeAPI("sk_test_ids", base=server.url, max_network_retries=0) as api,
    ):
        yield api, server


@pytest.mark.parametrize("call", sorted(CALLS))
@pytest.mark.parametrize("object_id", BAD_IDS)
def test_kind_stripe_object_id_shape_refused_before_any_request(
    stripe_paths: tuple[StripeAPI, ScriptedHTTPServer], call: str, object_id: str
) -> None:
    api, server = stripe_paths
    before = len(server.seen())
    with pytest.raises(InvalidJobId) as caught:
        CALLS[call](api, object_id)
    assert caught.value.permanent
    assert len(server.seen()) == before


@pytest.mark.parametrize(
    "object_id",
    [
        "cs_test_a1B2c3D4",
        "pi_3MtwBwLkdIwHu7ix28a3tqPa",
        "ch_3MmlLrLkdIwHu7ix0snN0B15",
        "re_1Nispe2eZvKYlo2Cd31jOCgZ",
        "dp_1MtJUT2eZvKYlo2CNaw2HvEv",
        "du_1MtJUT2eZvKYlo2CNaw2HvEv",
        "issfr_1NnrwHBw2dPENLoi9lnhV3RQ",
        "in_1MtHbELkdIwHu7ixl4OzzPMv",
        "sub_1MowQVLkdIwHu7ixeRlqHVzs",
        "evt_1NG8Du2eZvKYlo2CUI79vXWy",
    ],
)
def test_kind_stripe_object_id_shape_documented_ids_pass(object_id: str) -> None:
    assert check_stripe_id(object_id) == object_id

"""``workers.client`` is a contract with the pipelines: its names and signatures are pinned."""

from __future__ import annotations

import inspect

from workers import client


def test_client_exports_exactly_the_contract() -> None:
    assert sorted(client.__all__) == [
        "balance",
        "charge",
        "grant",
        "report_payment",
        "report_result",
        "report_stripe_webhook",
    ]


def test_client_signatures_are_keyword_only_as_documented() -> None:
    def shape(fn: object) -> list[tuple[str, str, object]]:
        sig = inspect.signature(fn)  # type: ignore[arg-type]
        return [(p.name, p.kind.name, p.default) for p in sig.parameters.values()]

    empty = inspect.Parameter.empty
    kw = "KEYWORD_ONLY"
    assert shape(client.grant) == [
        ("account_id", kw, empty),
        ("credits", kw, empty),
        ("idempotency_key", kw, empty),
        ("reason", kw, empty),
        ("credit_kind", kw, "promo"),  # optional, added with credit kinds: old calls stand
        ("subscription_id", kw, None),
        ("cycle_ends_at_ms", kw, None),
    ]
    assert shape(client.charge) == [
        ("generation_id", kw, empty),
        ("account_id", kw, empty),
        ("provider", kw, empty),
        ("operation", kw, empty),
        ("credits", kw, empty),
        ("provider_job_id", kw, None),
    ]
    assert shape(client.report_result) == [
        ("provider", kw, empty),
        ("payload", kw, empty),
        ("generation_id", kw, None),
        ("operation", kw, None),
    ]
    assert shape(client.balance) == [("account_id", "POSITIONAL_OR_KEYWORD", empty)]

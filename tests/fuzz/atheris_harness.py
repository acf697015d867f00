"""A coverage-guided fuzzer (atheris, libFuzzer for Python) over the parsers the hypothesis
tests cover: every provider's classifier and delivery identity, the payload rule, Stripe's
event parser and both webhook signature schemes, the policy loader. Any exception not of
Refundry's own tree (``ledger.errors.RefundryError``) is a crash: atheris stops and prints
the input. Run by ``tests/fuzz/long_run.py`` (atheris is an optional dependency it installs);
``python -m tests.fuzz.atheris_harness -atheris_runs=N`` runs it alone.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

import atheris

with atheris.instrument_imports(include=["providers", "handlers", "ledger", "workers"]):
    from handlers.policy_file import parse_policy, shipped_policy
    from handlers.webhook_verification import StandardWebhooks, verify_stripe
    from ledger.errors import RefundryError
    from providers.base import OPERATIONS
    from providers.deliveries import delivery_key
    from providers.registry import PROVIDER_NAMES, classify
    from providers.stripe import parse_event
    from providers.stripe_subscriptions import parse_subscription_event
    from workers import validation

STANDARD = "whsec_" + "ZnV6ei1zdGFuZGFyZC13ZWJob29rcy1zZWNyZXQtMzI="
STRIPE = "whsec_fuzz_stripe_endpoint_secret"
HOOKS = StandardWebhooks([STANDARD], variable="KLING_WEBHOOK_SECRET")
BASE = shipped_policy().versions[-1].rules
OPERATION_CHOICES: list[str | None] = [None, *OPERATIONS]


def _document(data: atheris.FuzzedDataProvider) -> Any:
    """A JSON document read from the input (the payload rule first, as every door applies
    it), else ``None``."""
    raw = data.ConsumeBytes(data.remaining_bytes())
    try:
        return validation.json_document(raw)
    except RefundryError:
        try:
            return json.loads(raw)
        except (ValueError, RecursionError):
            return None


def one_input(raw: bytes) -> None:
    data = atheris.FuzzedDataProvider(raw)
    target = data.ConsumeIntInRange(0, 5)
    try:
        if target == 0:
            provider = PROVIDER_NAMES[data.ConsumeIntInRange(0, len(PROVIDER_NAMES) - 1)]
            operation = OPERATION_CHOICES[data.ConsumeIntInRange(0, len(OPERATION_CHOICES) - 1)]
            document = _document(data)
            if isinstance(document, dict):
                classify(provider, document, operation)
                delivery_key(provider, document, operation=operation, webhook_id="w1")
        elif target == 1:
            document = _document(data)
            if document is not None:
                parse_event(document)
                parse_subscription_event(document) if isinstance(document, dict) else None
        elif target == 2:
            header = data.ConsumeUnicodeNoSurrogates(data.ConsumeIntInRange(0, 200))
            verify_stripe(data.ConsumeBytes(data.remaining_bytes()), header, [STRIPE])
        elif target == 3:
            headers = {
                "webhook-id": data.ConsumeUnicodeNoSurrogates(20),
                "webhook-timestamp": str(int(time.time()) + data.ConsumeIntInRange(-400, 400)),
                "webhook-signature": data.ConsumeUnicodeNoSurrogates(120),
            }
            HOOKS.verify(data.ConsumeBytes(data.remaining_bytes()), headers)
        elif target == 4:
            text = data.ConsumeUnicodeNoSurrogates(data.remaining_bytes())
            parse_policy(text, source="fuzz.toml", base=BASE)
        else:
            validation.payload(_document(data))
    except RefundryError:
        return


def main() -> None:
    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()

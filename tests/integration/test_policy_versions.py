"""Judged by the version in force at the time: a generation's refund by the policy version
in force when it was charged, a pack's landing action by the one in force when it was paid,
even after a newer version took effect; every entry records the version's name. On SQLite
and PostgreSQL, against the local Stripe fake for packs."""

from __future__ import annotations

import time
from dataclasses import replace

from handlers.generation import RefundPolicy, apply_result
from handlers.packs import PackCatalog, PaymentPolicy
from handlers.policy_file import shipped_policy
from handlers.reconcile import reconcile
from ledger import Ledger, Settlement, now_ms
from providers.stripe_api import StripeAPI
from tests.support.fake_stripe import FakeStripe
from tests.support.policy_files import changed_at
from tests.support.stripe_events import entry_versions, pack_entries
from tests.support.waiting import wait_until

MODERATED = {"object": "video", "status": "failed", "error": {"code": "moderation_blocked"}}
PRICE, AMOUNT, CREDITS = "price_pack500", 1900, 500
HOUR_MS = 3_600_000


def _charge(ledger: Ledger, generation_id: str) -> int:
    """Charge a video at OpenAI; the charge time the ledger recorded."""
    ledger.grant(
        account_id="acct_pv", credits=10, idempotency_key=f"seed-{generation_id}", reason="seed"
    )
    ledger.charge(
        generation_id=generation_id,
        account_id="acct_pv",
        provider="openai",
        operation="video",
        credits=10,
        provider_job_id=f"video_{generation_id}",
    )
    gen = ledger.generation(generation_id)
    assert gen is not None
    return gen.charged_at_ms


def _moderated(ledger: Ledger, generation_id: str, policy: RefundPolicy) -> Settlement:
    return apply_result(
        ledger,
        provider="openai",
        payload={**MODERATED, "id": f"video_{generation_id}"},
        generation_id=generation_id,
        operation=None,
        failure_known_at_ms=now_ms(),
        policy=policy,
    ).settlement


def test_the_same_moderated_generation_is_refunded_or_kept_by_the_version_at_its_charge(
    ledger: Ledger, ledger_url: str
) -> None:
    early_at = _charge(ledger, "gen-early")
    wait_until(lambda: now_ms() > early_at, timeout=2, message="the clock never moved")
    late_at = _charge(ledger, "gen-late")
    # "after" (moderation kept) took effect at the later charge; both results come now,
    # when "after" is in force for both.
    policy = RefundPolicy(changed_at(late_at))
    assert policy.book.at(now_ms()).name == "after"

    assert _moderated(ledger, "gen-early", policy) is Settlement.REFUNDED
    assert _moderated(ledger, "gen-late", policy) is Settlement.KEPT
    assert entry_versions(ledger_url, generation_id="gen-early") == [
        "charge:test-1",
        "refund:before",
    ]
    assert entry_versions(ledger_url, generation_id="gen-late") == ["charge:test-1"]
    assert ledger.balance("acct_pv") == 10  # 20 granted, 20 charged, 10 refunded


def test_a_generation_charged_once_moderation_was_no_longer_refunded_is_kept(
    ledger: Ledger, ledger_url: str
) -> None:
    charged_at = _charge(ledger, "gen-old")
    # The policy changes the other way later: what was charged under "after" stays kept.
    flipped = changed_at(charged_at)
    assert flipped.at(charged_at).name == "after"
    assert _moderated(ledger, "gen-old", RefundPolicy(flipped)) is Settlement.KEPT
    assert entry_versions(ledger_url, generation_id="gen-old") == ["charge:test-1"]


def test_the_shipped_policy_refunds_moderation_and_names_its_version(
    ledger: Ledger, ledger_url: str
) -> None:
    _charge(ledger, "gen-shipped")
    assert _moderated(ledger, "gen-shipped", RefundPolicy()) is Settlement.REFUNDED
    name = shipped_policy().versions[-1].name
    assert entry_versions(ledger_url, generation_id="gen-shipped")[-1] == f"refund:{name}"


def test_an_unlanded_pack_is_refunded_or_completed_by_the_version_in_force_when_paid(
    ledger: Ledger, ledger_url: str, fake: FakeStripe, api: StripeAPI
) -> None:
    now_s = int(time.time())
    _, early, _ = fake.create_paid_checkout(
        "acct_early", PRICE, AMOUNT, customer="cus_early", created=now_s - 5 * 3600
    )
    _, late, _ = fake.create_paid_checkout(
        "acct_late", PRICE, AMOUNT, customer="cus_late", created=now_s - 3 * 3600
    )
    book = changed_at(now_ms() - 4 * HOUR_MS)  # "after" (complete) paid from 4 h ago
    report = reconcile(
        ledger,
        api,
        catalog=PackCatalog({PRICE: CREDITS}),
        policy=PaymentPolicy(unlanded_action="complete"),  # now's: not the one that judges
        since_s=now_s - 86_400,
        book=book,
    )

    decided = {d["purchase"]: d["action"] for d in report.decisions}
    assert decided == {early["id"]: "refund", late["id"]: "complete"}
    assert ledger.balance("acct_early") == 0 and pack_entries(ledger_url, early["id"]) == []
    assert ledger.balance("acct_late") == CREDITS
    assert entry_versions(ledger_url, purchase_key=late["id"]) == ["grant:after"]
    assert [c.params["payment_intent"] for c in fake.refund_calls] == [early["id"]]


def test_each_pack_waits_for_the_landing_window_of_its_own_version(
    ledger: Ledger, fake: FakeStripe, api: StripeAPI
) -> None:
    now_s = int(time.time())
    _, paid, _ = fake.create_paid_checkout(
        "acct_wait", PRICE, AMOUNT, customer="cus_wait", created=now_s - 2 * 3600
    )
    # In force when it was paid: "after", whose window is 3 h here; today's is 1 h.
    book = changed_at(now_ms() - 4 * HOUR_MS)
    after = book.versions[-1]
    longer = replace(after.rules, landing_window_s=3 * 3600)
    book = book.replace_version(after, replace(after, rules=longer))
    report = reconcile(
        ledger,
        api,
        catalog=PackCatalog({PRICE: CREDITS}),
        policy=PaymentPolicy(),
        since_s=now_s - 86_400,
        book=book,
    )
    assert report.decisions == []
    assert ledger.balance("acct_wait") == 0
    assert ledger.payments.get(paid["id"]) is not None

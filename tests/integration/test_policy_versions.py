"""Judged by the version in force at the time: a generation's refund by the policy version
in force when it was charged, a pack's landing action by the one in force when it was paid,
even after a newer version took effect; every entry records the version's name. On SQLite
and PostgreSQL, against the local Stripe fake for packs."""

from __future__ import annotations

import time
from dataclasses import replace

import pytest

from handlers.explanations import explain
from handlers.generation import RefundPolicy, apply_result
from handlers.packs import PackCatalog, PaymentPolicy
from handlers.policy_file import parse_policy, shipped_policy
from handlers.policy_rules import PolicyBook
from handlers.reconcile import reconcile
from ledger import Ledger, Settlement, now_ms
from ledger.errors import PolicyVersionUnknown
from ledger.history import History
from providers.stripe_api import StripeAPI
from tests.support.fake_stripe import FakeStripe
from tests.support.policy_files import changed_at
from tests.support.stripe_events import entry_versions, pack_entries
from tests.support.waiting import wait_until

MODERATED = {"object": "video", "status": "failed", "error": {"code": "moderation_blocked"}}
PRICE, AMOUNT, CREDITS = "price_pack500", 1900, 500
HOUR_MS = 3_600_000


def _charge(ledger: Ledger, generation_id: str, version: str = "test-1") -> int:
    """Charge a video at OpenAI under ``version`` (the one in force then, as the client
    records it); the charge time the ledger recorded."""
    ledger.grant(
        account_id="acct_pv", credits=10, idempotency_key=f"seed-{generation_id}", reason="seed"
    )
    ledger.under(version).charge(
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
    early_at = _charge(ledger, "gen-early", "before")
    wait_until(lambda: now_ms() > early_at, timeout=2, message="the clock never moved")
    late_at = _charge(ledger, "gen-late", "after")
    # "after" (moderation kept) took effect at the later charge; both results come now,
    # when "after" is in force for both.
    policy = RefundPolicy(changed_at(late_at))
    assert policy.book.at(now_ms()).name == "after"

    assert _moderated(ledger, "gen-early", policy) is Settlement.REFUNDED
    assert _moderated(ledger, "gen-late", policy) is Settlement.KEPT
    assert entry_versions(ledger_url, generation_id="gen-early") == [
        "charge:before",
        "refund:before",
    ]
    assert entry_versions(ledger_url, generation_id="gen-late") == ["charge:after"]
    assert ledger.balance("acct_pv") == 10  # 20 granted, 20 charged, 10 refunded


def test_a_generation_charged_once_moderation_was_no_longer_refunded_is_kept(
    ledger: Ledger, ledger_url: str
) -> None:
    charged_at = _charge(ledger, "gen-old", "after")
    # The policy changes the other way later: what was charged under "after" stays kept.
    flipped = changed_at(charged_at)
    assert flipped.at(charged_at).name == "after"
    assert _moderated(ledger, "gen-old", RefundPolicy(flipped)) is Settlement.KEPT
    assert entry_versions(ledger_url, generation_id="gen-old") == ["charge:after"]


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


# A generation is judged by the version its charge recorded, by name: not by a version
# back-dated over its charge time since, nor by another version when this process's policy
# lacks that name (a newer file: read again once, else retried, never guessed).

V1 = """\
[[version]]
name = "v1"
effective = 2026-01-01T00:00:00Z
refund_outcomes = ["failed", "empty_success", "cancelled"]
"""
V2 = """
[[version]]
name = "v2"
effective = 2026-06-01T00:00:00Z
refund_outcomes = ["failed", "empty_success", "moderated", "cancelled"]
"""
BACKDATED_V3 = """
[[version]]
name = "v3"
effective = 2026-07-01T00:00:00Z
refund_outcomes = ["failed"]
"""


def _book(text: str) -> PolicyBook:
    return parse_policy(text, source="policy.toml", base=shipped_policy().versions[-1].rules)


def test_a_version_back_dated_over_the_charge_does_not_judge_it(
    ledger: Ledger, ledger_url: str
) -> None:
    _charge(ledger, "gen-rv1", "v2")
    # v3 (moderation kept) is now in force at the charge time too: the charge said v2.
    policy = RefundPolicy(_book(V1 + V2 + BACKDATED_V3))
    assert _moderated(ledger, "gen-rv1", policy) is Settlement.REFUNDED
    assert entry_versions(ledger_url, generation_id="gen-rv1") == ["charge:v2", "refund:v2"]
    shown = explain(History(ledger.db), policy.book, "gen-rv1")
    assert shown.judged_by == "v2"  # the version that judged it, not v3 in force by time


def test_a_version_this_process_lacks_is_read_again_from_the_file(
    ledger: Ledger, ledger_url: str
) -> None:
    _charge(ledger, "gen-rv2", "v2")
    reads: list[str] = []

    def reread() -> PolicyBook:
        reads.append("read")
        return _book(V1 + V2)

    policy = RefundPolicy(_book(V1), reread=reread)  # started before v2 was written
    assert _moderated(ledger, "gen-rv2", policy) is Settlement.REFUNDED
    assert reads == ["read"]
    assert entry_versions(ledger_url, generation_id="gen-rv2") == ["charge:v2", "refund:v2"]


def test_a_version_still_unknown_after_reading_again_is_retried_not_judged(
    ledger: Ledger, ledger_url: str
) -> None:
    _charge(ledger, "gen-rv3", "v2")
    policy = RefundPolicy(_book(V1), reread=lambda: _book(V1))
    with pytest.raises(PolicyVersionUnknown) as unknown:
        _moderated(ledger, "gen-rv3", policy)
    assert unknown.value.fields == {"generation_id": "gen-rv3", "policy_version": "v2"}
    assert not unknown.value.permanent
    gen = ledger.generation("gen-rv3")
    assert gen is not None and gen.outcome is None  # nothing decided
    assert entry_versions(ledger_url, generation_id="gen-rv3") == ["charge:v2"]

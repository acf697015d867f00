"""``refundry eligibility`` and ``refundry explain`` as processes over a real ledger (SQLite
and PostgreSQL): a refund request is judged by the ``[version.manual_refunds]`` rules of the
version in force when the pack was paid, with its figures, and nothing is written; explain
shows what was decided, under which version and rule, when, and the entries it wrote; an id
the ledger does not know is one line and exit 3. A pack lands through its Stripe event,
confirmed at the local fake Stripe over HTTP."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from handlers.generation import RefundPolicy, apply_result
from handlers.manual_refunds import eligibility
from handlers.packs import PackCatalog, PaymentPolicy
from handlers.payments import apply_payment_event
from handlers.policy_file import shipped_policy
from ledger import Ledger, now_ms
from ledger.history import History
from providers.stripe import parse_event
from providers.stripe_api import StripeAPI
from tests.support.commands import clean_env, refundry
from tests.support.fake_stripe import FakeStripe
from tests.support.stripe_events import bought, envelope
from workers.demo_payloads import demo_payload

PRICE, AMOUNT, PACK = "price_pack500", 1900, 500
DAY_MS = 86_400_000
Json = dict[str, Any]


def _iso(at_ms: int) -> str:
    return datetime.fromtimestamp(at_ms / 1000, tz=UTC).isoformat(timespec="milliseconds")


def _use(ledger: Ledger, name: str, credits: int) -> None:
    """Charge ``credits`` of ``acct_el`` for generation ``gen-<name>`` (job ``job-<name>``)."""
    ledger.charge(
        generation_id=f"gen-{name}",
        account_id="acct_el",
        provider="kling",
        operation="video",
        credits=credits,
        provider_job_id=f"job-{name}",
    )


@pytest.fixture
def landed(ledger: Ledger, fake: FakeStripe, api: StripeAPI) -> tuple[Json, int]:
    """A pack of 500 credits landed on ``acct_el`` through its session's event, and 100 of
    them used by a generation: (the session, its payment time in ms)."""
    session, intent, _ = bought(fake, "acct_el", PRICE, AMOUNT)
    event = parse_event(envelope("checkout.session.completed", session))
    apply_payment_event(
        ledger, event, catalog=PackCatalog({PRICE: PACK}), gateway=api, policy=PaymentPolicy()
    )
    _use(ledger, "el", 100)
    payment = ledger.payments.get(intent["id"])
    assert payment is not None and payment.paid_at_ms is not None
    return session, payment.paid_at_ms


def _env(tmp_path: Path, ledger_url: str, paid_at_ms: int) -> dict[str, str]:
    """The command's environment: the test's ledger, and a policy whose version ``lenient``
    (7 days, a fifth of the pack) was in force at the payment and ``strict`` (1 day, 5 %)
    took effect a second later."""
    policy = tmp_path / "policy.toml"
    policy.write_text(
        f"""\
[[version]]
name = "lenient"
effective = 1970-01-01T00:00:00Z

[version.manual_refunds]
window_days = 7
max_used_share = 0.2

[[version]]
name = "strict"
effective = {_iso(paid_at_ms + 1000)}

[version.manual_refunds]
window_days = 1
max_used_share = 0.05
"""
    )
    return clean_env(tmp_path, DATABASE_URL=ledger_url, REFUNDRY_POLICY=str(policy))


def _eligibility(env: dict[str, str], purchase: str, at_ms: int) -> Json:
    done = refundry(env, "eligibility", purchase, "--at", _iso(at_ms), "--json")
    assert done.returncode == 0, done.stderr
    answer: Json = json.loads(done.stdout)
    return answer


def test_a_request_is_judged_by_the_version_in_force_at_payment_with_its_figures(
    ledger: Ledger, ledger_url: str, landed: tuple[Json, int], tmp_path: Path
) -> None:
    session, paid = landed
    env = _env(tmp_path, ledger_url, paid)
    answer = _eligibility(env, session["payment_intent"], paid + 3 * DAY_MS)
    assert answer["qualifies"] is True
    assert answer["policy_version"] == "lenient"  # "strict" is in force now
    assert answer["credits"] == {"granted": PACK, "unspent": 400, "used": 100}
    assert answer["rules"] == {
        "manual_refunds.max_used_share": 0.2,
        "manual_refunds.window_days": 7,
    }
    assert (
        answer["reasons"][1]
        == "asked 3.00 days after payment: within manual_refunds.window_days = 7"
    )
    assert answer["reasons"][2] == (
        "100 of 500 credits used (20.0%): at most manual_refunds.max_used_share = 0.2"
    )
    # The same purchase named by its Checkout Session.
    assert _eligibility(env, session["id"], paid + 3 * DAY_MS) == answer


def test_a_request_outside_the_window_or_over_the_share_does_not_qualify_and_writes_nothing(
    ledger: Ledger, ledger_url: str, landed: tuple[Json, int], tmp_path: Path
) -> None:
    session, paid = landed
    pi = session["payment_intent"]
    env = _env(tmp_path, ledger_url, paid)
    before = (ledger.balance("acct_el"), ledger.payments.decisions(pi), ledger.payments.get(pi))

    late = _eligibility(env, pi, paid + 8 * DAY_MS)
    assert late["qualifies"] is False
    assert late["reasons"][1].startswith("asked 8.00 days after payment: outside")

    _use(ledger, "el-2", 1)
    over = _eligibility(env, pi, paid + DAY_MS)
    assert (over["qualifies"], over["credits"]["used"]) == (False, 101)
    assert "more than manual_refunds.max_used_share = 0.2" in over["reasons"][2]
    text = refundry(env, "eligibility", pi, "--at", _iso(paid + DAY_MS))
    assert text.returncode == 0 and text.stdout.splitlines()[-1] == "does not qualify"

    after = (ledger.balance("acct_el") + 1, ledger.payments.decisions(pi), ledger.payments.get(pi))
    assert after == before  # only the test's own charge moved anything


def test_explain_shows_a_purchase_and_a_generation_with_version_rule_and_entries(
    ledger: Ledger, ledger_url: str, landed: tuple[Json, int], tmp_path: Path
) -> None:
    session, paid = landed
    pi = session["payment_intent"]
    env = _env(tmp_path, ledger_url, paid)
    apply_result(
        ledger,
        provider="kling",
        payload=demo_payload("kling", "job-el", "failed"),
        generation_id="gen-el",
        operation=None,
        failure_known_at_ms=now_ms(),
        policy=RefundPolicy(),
    )

    shown = json.loads(refundry(env, "explain", session["id"], "--json").stdout)
    assert (shown["kind"], shown["id"], shown["judged_by"]) == ("purchase", pi, "lenient")
    [grant] = shown["decisions"]
    assert (grant["decision"], grant["rule"], grant["policy_version"]) == (
        "grant",
        "packs",
        "test-1",
    )
    assert [(e["key"], e["kind"], e["amount"]) for e in shown["entries"]] == [
        (f"pack:{pi}", "grant", PACK)
    ]

    gen = json.loads(refundry(env, "explain", "gen-el", "--json").stdout)
    [refund] = gen["decisions"]
    assert (refund["decision"], refund["rule"]) == ("refund", "refund_outcomes")
    assert refund["reason"].startswith("failed: ")
    assert [(e["key"], e["amount"]) for e in gen["entries"]] == [
        ("charge:gen-el", -100),
        ("refund:gen-el", 100),
    ]
    screen = refundry(env, "explain", "gen-el")
    assert screen.returncode == 0, screen.stderr
    for shown_text in ("generation gen-el", "rule", "refund_outcomes", "refund:gen-el", "+100"):
        assert shown_text in screen.stdout


def test_an_unknown_id_is_one_line_and_exit_3(
    ledger: Ledger, ledger_url: str, tmp_path: Path
) -> None:
    env = clean_env(tmp_path, DATABASE_URL=ledger_url)
    for command in (("explain", "gen-nobody"), ("eligibility", "pi_nobody")):
        done = refundry(env, *command)
        assert (done.returncode, done.stdout) == (3, "")
        [line] = done.stderr.splitlines()
        assert line.startswith("refundry: NothingKnownById: ") and command[1] in line


def test_a_pack_spent_in_full_stays_used_after_other_credits_are_granted(
    ledger: Ledger, landed: tuple[Json, int]
) -> None:
    session, paid = landed  # 100 of the pack used
    _use(ledger, "el-rest", 400)  # the pack was the only grant: all of it used
    ledger.grant(account_id="acct_el", credits=500, idempotency_key="promo-el", reason="promo")
    after_promo = now_ms()
    answer = eligibility(
        History(ledger.db), shipped_policy(), session["payment_intent"], asked_at_ms=after_promo
    )
    assert (answer.credits.granted, answer.credits.used) == (PACK, PACK)
    assert answer.reasons[2].startswith("500 of 500 credits used (100.0%): more than")
    assert answer.qualifies is False
    # Asked at the payment's moment: nothing of the pack was used then.
    then = eligibility(History(ledger.db), shipped_policy(), session["id"], asked_at_ms=paid)
    assert then.credits.used == 0 and then.qualifies is True

"""``refundry reconcile`` as a real process: a dry run prints its decisions and changes
nothing, the real run settles unlanded packs once, a second run does nothing more, the ledger
still checks ok, and without ``--since`` it looks back 24 hours. Stripe is the local fake,
over HTTP; the ledger is SQLite under ``tmp_path``."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from handlers.packs import PackCatalog
from handlers.purchases import observe
from ledger import Ledger, open_ledger
from providers.stripe import CheckoutSession, parse_event
from providers.stripe_api import StripeAPI
from tests.support.commands import clean_env, refundry
from tests.support.fake_sentry import FakeSentry
from tests.support.fake_stripe import FakeStripe
from tests.support.stripe_events import envelope, pack_entries

KEY = "sk_test_refundry_cli"
PRICE, AMOUNT, CREDITS = "price_pack500", 1900, 500
CATALOG = PackCatalog({PRICE: CREDITS})
Json = dict[str, Any]


@pytest.fixture
def fake() -> Iterator[FakeStripe]:
    server = FakeStripe().start()
    yield server
    server.close()


def ago(seconds: int) -> int:
    return int(time.time()) - seconds


def never_delivered(fake: FakeStripe, account: str, age_s: int) -> str:
    """A pack paid ``age_s`` ago at Stripe whose webhooks never reached Refundry."""
    _, intent, _ = fake.create_paid_checkout(account, PRICE, AMOUNT, created=ago(age_s))
    return str(intent["id"])


def received_not_granted(ledger: Ledger, session: Json, fake: FakeStripe) -> str:
    """The session's webhook was received and merged, then the worker died before granting."""
    event = parse_event(envelope("checkout.session.completed", session))
    assert isinstance(event, CheckoutSession)
    with StripeAPI(KEY, base=fake.url, max_network_retries=0) as api:
        seen = observe(ledger, event, CATALOG, api)
    assert seen is not None
    return seen.purchase_key


def cli_env(tmp_path: Path, fake: FakeStripe) -> dict[str, str]:
    """The command's environment, over a ledger that exists (``reconcile`` creates none)."""
    env = clean_env(
        tmp_path,
        STRIPE_API_KEY=KEY,
        STRIPE_API_BASE=fake.url,
        REFUNDRY_PACKS=json.dumps({PRICE: CREDITS}),
        REFUNDRY_LANDING_WINDOW_S="60",
        UNLANDED_PACK_ACTION="complete",
    )
    cli_ledger(env).db.close()
    return env


def lines(stdout: str) -> tuple[list[Json], Json]:
    """The decisions printed, and the summary line."""
    *decided, summary = [json.loads(line) for line in stdout.splitlines()]
    return decided, summary


def cli_ledger(env: dict[str, str]) -> Ledger:
    return open_ledger(env["DATABASE_URL"], policy_version="test-cli")


def test_refundry_reconcile_dry_run_reports_then_the_real_run_grants_once(
    tmp_path: Path, fake: FakeStripe
) -> None:
    env = cli_env(tmp_path, fake)
    session, _, _ = fake.create_paid_checkout("acct_cli", PRICE, AMOUNT, created=ago(600))
    book = cli_ledger(env)
    try:
        pi = received_not_granted(book, session, fake)
    finally:
        book.db.close()

    dry = refundry(env, "reconcile", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    decided, summary = lines(dry.stdout)
    assert [(d["purchase"], d["action"]) for d in decided] == [(pi, "complete")]
    assert summary == {"seen": 2, "decisions": 1, "dry_run": True}
    assert refundry(env, "ledger", "balance", "acct_cli").stdout.strip() == "0"

    real = refundry(env, "reconcile")
    assert real.returncode == 0, real.stderr
    assert [(d["purchase"], d["action"]) for d in lines(real.stdout)[0]] == [(pi, "complete")]
    again = refundry(env, "reconcile")
    assert again.returncode == 0
    assert lines(again.stdout) == ([], {"seen": 2, "decisions": 0, "dry_run": False})
    assert refundry(env, "ledger", "balance", "acct_cli").stdout.strip() == str(CREDITS)
    assert pack_entries(env["DATABASE_URL"], pi) == [("grant", CREDITS, "acct_cli")]
    check = refundry(env, "ledger", "check")
    assert (check.returncode, check.stdout.strip()) == (0, "ok")


def test_refundry_reconcile_looks_back_24_hours_without_since(
    tmp_path: Path, fake: FakeStripe
) -> None:
    env = cli_env(tmp_path, fake)
    recent = never_delivered(fake, "acct_20h", age_s=20 * 3600)
    too_old = never_delivered(fake, "acct_25h", age_s=25 * 3600)
    done = refundry(env, "reconcile")
    assert done.returncode == 0, done.stderr
    decided, summary = lines(done.stdout)
    assert [(d["purchase"], d["action"]) for d in decided] == [(recent, "complete")]
    assert summary["seen"] == 2
    assert refundry(env, "ledger", "balance", "acct_20h").stdout.strip() == str(CREDITS)
    assert refundry(env, "ledger", "balance", "acct_25h").stdout.strip() == "0"
    assert pack_entries(env["DATABASE_URL"], too_old) == []
    check = refundry(env, "ledger", "check")
    assert (check.returncode, check.stdout.strip()) == (0, "ok")


def test_refundry_reconcile_dry_run_reports_a_session_never_delivered(
    tmp_path: Path, fake: FakeStripe
) -> None:
    env = cli_env(tmp_path, fake)
    pi = never_delivered(fake, "acct_cli_dry", age_s=600)
    dry = refundry(env, "reconcile", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    decided, summary = lines(dry.stdout)
    assert [(d["purchase"], d["action"]) for d in decided] == [(pi, "complete")]
    assert summary == {"seen": 2, "decisions": 1, "dry_run": True}
    assert refundry(env, "ledger", "balance", "acct_cli_dry").stdout.strip() == "0"
    assert pack_entries(env["DATABASE_URL"], pi) == []


@pytest.mark.parametrize("dry_run", [False, True], ids=["real", "dry-run"])
def test_refundry_reconcile_exits_5_when_stripe_failed_for_a_purchase(
    tmp_path: Path, fake: FakeStripe, dry_run: bool
) -> None:
    """README: exit 5, a provider cannot be reached and the same command may succeed later;
    the purchase is alerted once, and settled by the next run once Stripe answers."""
    prices = [f"price_item{n:02d}" for n in range(12)]  # more line items than one page
    env = cli_env(tmp_path, fake) | {"REFUNDRY_PACKS": json.dumps(dict.fromkeys(prices, 10))}
    for price in prices:
        fake.add_price(price, 100)
    items = [(price, 1) for price in prices]
    session = fake.checkout(items, client_reference_id="acct_down", created=ago(600))
    pi = session["payment_intent"]
    fake.fault("/v1/checkout/sessions/*/line_items", None, status=500)
    flags = ["--dry-run"] if dry_run else []
    failed = refundry(env, "reconcile", *flags)
    assert failed.returncode == 5, failed.stderr
    decided, summary = lines(failed.stdout)
    assert [(d["purchase"], d["action"]) for d in decided] == [(pi, "alert")]
    assert summary["undecided"] == [pi]
    assert refundry(env, "ledger", "balance", "acct_down").stdout.strip() == "0"


def test_reconcile_alerts_reach_sentry_from_the_command_line_as_from_the_scheduler(
    tmp_path: Path, fake: FakeStripe
) -> None:
    """The command line decides through the scheduler's function and raises its alerts:
    one ``reconciliation`` event per decision, tagged ``process: cli``."""
    with FakeSentry() as sentry:
        env = cli_env(tmp_path, fake) | {"SENTRY_DSN": sentry.dsn}
        pi = never_delivered(fake, "acct_sentry", age_s=600)
        done = refundry(env, "reconcile")
        assert done.returncode == 0, done.stderr
        events = sentry.events()  # sent before the command exited (sentry-sdk's flush)
    [event] = [e for e in events if e.get("tags", {}).get("alert") == "reconciliation"]
    assert event["fingerprint"] == ["reconciliation", "stripe", "complete"]
    assert event["contexts"]["refundry"] == {"purchase": pi}
    assert event["tags"]["process"] == "cli"
    assert sentry.refused == []

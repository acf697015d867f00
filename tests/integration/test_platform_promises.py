"""The platforms' automatic refund promises, one named test each, driven through Refundry's
real entry points: the pipeline client, the Redis broker and worker processes, ``refundry
sweep`` and ``refundry reconcile`` as processes, Stripe's API as a local fake over HTTP. Each
test also reads back what the ledger recorded about the decision: the policy version and the
rule of it (``refundry explain``'s record). On SQLite and PostgreSQL.

The promises about credit kinds (subscription credits expiring, a refund going back to the
kind it came from) are tested with the kinds themselves."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from handlers.explanations import explain
from handlers.stuck_sweep import SYSTEM_FAILURE
from ledger import Ledger, audit, now_ms
from ledger.decision_rules import AFTER_CANCELLATION
from ledger.history import History
from providers.base import MUSIC_OPERATIONS
from tests.integration.test_subscription_cancellations import Story, assert_refunded_once
from tests.support.commands import WorkerProcesses, refundry
from tests.support.fake_billing import FakeBilling
from tests.support.fake_stripe import FakeStripe
from tests.support.inbox_waits import wait_processed
from tests.support.settings import configure
from tests.support.stripe_events import envelope, pack_entries
from tests.support.waiting import wait_until
from workers import client, runtime
from workers.demo_payloads import demo_payload

ACCOUNT, TOP_UP, CREDITS = "acct_promise", 1000, 40
PRICE, AMOUNT, PACK = "price_pack500", 1900, 500
KEY = "sk_test_refundry_promises"
HOUR_S = 3600
Json = dict[str, Any]


def _charge(gen: str, provider: str, operation: str, job: str) -> int:
    """Charge ``gen`` through the pipeline client; its charge time (ms since the epoch)."""
    client.grant(account_id=ACCOUNT, credits=TOP_UP, idempotency_key="top-up", reason="test")
    client.charge(
        generation_id=gen,
        account_id=ACCOUNT,
        provider=provider,
        operation=operation,
        credits=CREDITS,
        provider_job_id=job,
    )
    charged = runtime.ledger().generation(gen)
    assert charged is not None
    return charged.charged_at_ms


def _settled(*generations: str) -> None:
    ledger = runtime.ledger()

    def all_settled() -> bool:
        found = [ledger.generation(g) for g in generations]
        return all(g is not None and g.outcome is not None for g in found)

    wait_until(all_settled, timeout=60, message=f"{generations} not settled by the workers")


def _decided(id: str) -> tuple[str, str | None, str | None, list[str]]:
    """What the ledger recorded about ``id``: (the first decision, its policy version, its
    rule, the keys of the entries written), as ``refundry explain`` shows them."""
    shown = explain(History(runtime.ledger().db), runtime.policy_book(), id)
    first = shown.decisions[0]
    return (
        first.decision,
        first.policy_version,
        first.rule,
        [e.idempotency_key for e in shown.entries],
    )


def _refunded_as(gen: str, rule: str = "refund_outcomes") -> None:
    decision, version, recorded_rule, keys = _decided(gen)
    in_force = runtime.policy_book().versions[-1].name
    assert (decision, version, recorded_rule) == ("refund", in_force, rule)
    assert keys == [f"charge:{gen}", f"refund:{gen}"]


def _policy_file(tmp_path: Path, text: str) -> str:
    path = tmp_path / "policy.toml"
    path.write_text(text)
    return str(path)


def _rfc3339(at_ms: int) -> str:
    return datetime.fromtimestamp(at_ms / 1000, tz=UTC).isoformat(timespec="milliseconds")


# --------------------------------------------------------------------------- generations


def test_upstream_failure_is_refunded(
    workers: WorkerProcesses, refundry_env: dict[str, str]
) -> None:
    _charge("gen-failed", "kling", "video", "job-failed")
    client.report_result(provider="kling", payload=demo_payload("kling", "job-failed", "failed"))
    workers.start(processes=1, threads=2)
    _settled("gen-failed")
    assert client.balance(ACCOUNT) == TOP_UP
    _refunded_as("gen-failed")
    assert audit(runtime.ledger().db) == []


def test_moderation_is_not_charged_under_the_version_in_force_at_the_charge_not_now(
    refundry_env: dict[str, str],
    workers: WorkerProcesses,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    # "before" refunds moderation ("not charged"); "after" does not, from a moment between
    # the two charges. Both results are judged once "after" is in force.
    switch_ms = now_ms() + 1500
    policy = _policy_file(
        tmp_path,
        f"""\
[[version]]
name = "before"
effective = 1970-01-01T00:00:00Z
refund_outcomes = ["failed", "empty_success", "moderated", "cancelled"]

[[version]]
name = "after"
effective = {_rfc3339(switch_ms)}
refund_outcomes = ["failed", "empty_success", "cancelled"]
""",
    )
    workers.env = configure(monkeypatch, workers.env, REFUNDRY_POLICY=policy)
    early = _charge("gen-mod-early", "fal", "video", "req-mod-early")
    wait_until(lambda: now_ms() > switch_ms, timeout=5, message="the clock never passed it")
    late = _charge("gen-mod-late", "fal", "video", "req-mod-late")
    assert early < switch_ms <= late
    for job in ("req-mod-early", "req-mod-late"):
        client.report_result(provider="fal", payload=demo_payload("fal", job, "moderated"))
    workers.start(processes=1, threads=2)
    _settled("gen-mod-early", "gen-mod-late")
    assert runtime.policy_book().at(now_ms()).name == "after"

    assert _decided("gen-mod-early") == (
        "refund",
        "before",
        "refund_outcomes",
        ["charge:gen-mod-early", "refund:gen-mod-early"],
    )
    assert _decided("gen-mod-late") == ("keep", "after", "refund_outcomes", ["charge:gen-mod-late"])
    assert client.balance(ACCOUNT) == TOP_UP - CREDITS


def test_charged_but_no_output_is_restored_by_the_sweeper(
    refundry_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # fal has no status query: a generation it never answers is refunded at its hard
    # deadline, here one second after the charge.
    env = configure(monkeypatch, refundry_env, REFUNDRY_DEADLINES='{"fal:video": [0, 1]}')
    charged = _charge("gen-lost", "fal", "video", "req-lost")
    wait_until(lambda: now_ms() > charged + 1000, timeout=5, message="the deadline never came")
    swept = refundry(env, "sweep")
    assert swept.returncode == 0, swept.stderr
    assert json.loads(swept.stdout.splitlines()[-1])["stuck"]["refunded_as_lost"] == 1
    assert client.balance(ACCOUNT) == TOP_UP
    gen = runtime.ledger().generation("gen-lost")
    assert gen is not None and gen.outcome_reason is not None
    assert SYSTEM_FAILURE in gen.outcome_reason
    _refunded_as("gen-lost")


def test_empty_success_is_refunded(workers: WorkerProcesses, refundry_env: dict[str, str]) -> None:
    _charge("gen-empty", "kling", "video", "job-empty")
    empty = demo_payload("kling", "job-empty", "empty_success")
    client.report_result(provider="kling", payload=empty)
    workers.start(processes=1, threads=2)
    _settled("gen-empty")
    gen = runtime.ledger().generation("gen-empty")
    assert gen is not None and gen.outcome is not None and gen.outcome.value == "empty_success"
    assert client.balance(ACCOUNT) == TOP_UP
    _refunded_as("gen-empty")


def test_every_music_operation_is_refunded_on_failure(
    workers: WorkerProcesses, refundry_env: dict[str, str]
) -> None:
    gens = [f"gen-{op}" for op in MUSIC_OPERATIONS]
    for op in MUSIC_OPERATIONS:
        _charge(f"gen-{op}", "fal", op, f"req-{op}")
        client.report_result(provider="fal", payload=demo_payload("fal", f"req-{op}", "failed"))
    workers.start(processes=1, threads=4)
    _settled(*gens)
    assert client.balance(ACCOUNT) == TOP_UP
    for gen in gens:
        _refunded_as(gen)


def test_lora_training_failure_is_refunded(
    workers: WorkerProcesses, refundry_env: dict[str, str]
) -> None:
    # A Replicate training that failed, as GET /v1/trainings/{id} and its webhook return it
    # (https://replicate.com/docs/reference/http#trainings.get).
    failed = {
        "id": "trainlora0001",
        "model": "ostris/flux-dev-lora-trainer",
        "status": "failed",
        "input": {"input_images": "https://example.com/faces.zip", "steps": 1000},
        "output": None,
        "error": "CUDA out of memory",
        "logs": "step 120/1000",
        "created_at": "2026-01-01T00:00:00.000Z",
        "completed_at": "2026-01-01T00:20:00.000Z",
        "urls": {
            "get": "https://api.replicate.com/v1/trainings/trainlora0001",
            "cancel": "https://api.replicate.com/v1/trainings/trainlora0001/cancel",
        },
    }
    _charge("gen-lora", "replicate", "training", "trainlora0001")
    client.report_result(provider="replicate", payload=failed)
    workers.start(processes=1, threads=2)
    _settled("gen-lora")
    assert client.balance(ACCOUNT) == TOP_UP
    _refunded_as("gen-lora")


# --------------------------------------------------------------------------- payments


def test_a_pack_not_landed_within_the_window_is_completed_or_refunded_by_the_version_at_payment(
    ledger: Ledger,
    ledger_url: str,
    refundry_env: dict[str, str],
    fake: FakeStripe,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    # Two packs paid at Stripe whose events never reached Refundry: one paid 5 h ago under
    # "refund-era" (unlanded packs refunded), one 3 h ago under "complete-era".
    now_s = int(time.time())
    _, early, _ = fake.create_paid_checkout(
        "acct_unl_early", PRICE, AMOUNT, customer="cus_unl_early", created=now_s - 5 * HOUR_S
    )
    _, late, _ = fake.create_paid_checkout(
        "acct_unl_late", PRICE, AMOUNT, customer="cus_unl_late", created=now_s - 3 * HOUR_S
    )
    policy = _policy_file(
        tmp_path,
        f"""\
[[version]]
name = "refund-era"
effective = 1970-01-01T00:00:00Z
unlanded_pack_action = "refund"

[version.packs]
{PRICE} = {PACK}

[[version]]
name = "complete-era"
effective = {_rfc3339((now_s - 4 * HOUR_S) * 1000)}
unlanded_pack_action = "complete"
""",
    )
    env = configure(
        monkeypatch,
        refundry_env,
        REFUNDRY_POLICY=policy,
        STRIPE_API_KEY=KEY,
        STRIPE_API_BASE=fake.url,
    )
    done = refundry(env, "reconcile")
    assert done.returncode == 0, done.stderr
    *decided, _summary = [json.loads(line) for line in done.stdout.splitlines()]
    actions = {d["purchase"]: d["action"] for d in decided}
    assert actions == {early["id"]: "refund", late["id"]: "complete"}

    assert ledger.balance("acct_unl_early") == 0 and pack_entries(ledger_url, early["id"]) == []
    assert [c.params["payment_intent"] for c in fake.refund_calls] == [early["id"]]
    assert ledger.balance("acct_unl_late") == PACK
    assert _decided(early["id"])[:3] == ("refund", "refund-era", "unlanded_pack_action")
    grant = _decided(late["id"])
    assert grant == ("grant", "complete-era", "unlanded_pack_action", [f"pack:{late['id']}"])


def test_a_duplicate_charge_is_refunded(
    workers: WorkerProcesses,
    refundry_env: dict[str, str],
    fake: FakeStripe,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    workers.env = configure(
        monkeypatch,
        workers.env,
        STRIPE_API_KEY=KEY,
        STRIPE_API_BASE=fake.url,
        REFUNDRY_PACKS=json.dumps({PRICE: PACK}),
    )
    fake.add_price(PRICE, AMOUNT)
    t0 = int(time.time()) - 300
    first, later = (
        fake.checkout(
            [(PRICE, 1)], client_reference_id="acct_dup", customer="cus_dup", created=t0 + 60 * n
        )
        for n in range(2)
    )
    for session in (first, later):
        client.report_payment(
            provider="stripe", event=envelope("checkout.session.completed", session)
        )
    workers.start(processes=1, threads=1)  # one thread: the first payment lands first
    ledger = runtime.ledger()

    def later_refunded() -> bool:
        p = ledger.payments.get(later["payment_intent"])
        return p is not None and p.state == "refunded"

    wait_until(later_refunded, timeout=60, message="the duplicate was not refunded")
    refunds = [(r["payment_intent"], r["amount"], r["reason"]) for r in fake.objects("refund")]
    assert refunds == [(later["payment_intent"], AMOUNT, "duplicate")]
    assert client.balance("acct_dup") == PACK
    decision, version, rule, _ = _decided(later["payment_intent"])
    assert (decision, rule) == ("duplicate", "duplicate_window_s")
    assert version == runtime.policy_book().versions[-1].name
    assert audit(ledger.db) == []


def test_a_charge_after_a_confirmed_cancellation_is_refunded(
    workers: WorkerProcesses,
    refundry_env: dict[str, str],
    billing: FakeBilling,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    workers.env = configure(
        monkeypatch, workers.env, STRIPE_API_KEY=KEY, STRIPE_API_BASE=billing.url
    )
    story = Story(billing, "cus_promise")
    ids = [client.report_payment(provider="stripe", event=e) for e in story.events.values()]
    workers.start(processes=1, threads=2)
    ledger = runtime.ledger()

    wait_processed(ledger, ids, "subscription events")
    assert_refunded_once(ledger, billing, story)
    decision, _, rule, _ = _decided(story.after["id"])
    assert (decision, rule) == ("refund", AFTER_CANCELLATION)

"""A planted secret is kept nowhere once an event is applied or dead-lettered, and the
embedded services are the owner's alone."""

from __future__ import annotations

import json
import os
import sqlite3
import stat
from pathlib import Path

import pytest
import redis

from ledger import Ledger, Outcome, open_ledger
from ledger.private_files import open_private
from ledger.redaction import MASK
from workers.embedded_redis import EmbeddedRedis

PLANTED = "s3cr3t-Planted-Value-0042"


def _stored(ledger: Ledger) -> str:
    """Every inbox and dead-letter row as the database holds it."""
    with ledger.db.read() as tx:
        rows = [*tx.all("dead_letters"), *(tx.one("inbox_by_id", id=i) for i in ("m1", "m2"))]
    return json.dumps([dict(r) for r in rows if r is not None], default=str)


def test_an_applied_event_keeps_only_its_redacted_payload(ledger: Ledger) -> None:
    ledger.grant(account_id="acct", credits=100, idempotency_key="top", reason="t")
    ledger.charge(
        generation_id="g1",
        account_id="acct",
        provider="fal",
        operation="video",
        credits=30,
        provider_job_id="job-1",
    )
    payload = {
        "status": "ERROR",
        "headers": {"Authorization": f"Bearer {PLANTED}"},
        "video": {"url": f"https://cdn.example/v.mp4?X-Amz-Signature={PLANTED}"},
        "note": f"postgresql://u:{PLANTED}@db/x",
    }
    ledger.inbox.record(id="m1", kind="result", provider="fal", payload=payload)
    assert PLANTED in _stored(ledger), "the event is kept whole until it is applied"

    ledger.settle(
        generation_id="g1",
        outcome=Outcome.FAILED,
        reason="e",
        refund=True,
        failure_known_at_ms=1,
        inbox_id="m1",
    )

    item = ledger.inbox.get("m1")
    assert item is not None and item.state == "processed"
    assert item.payload["status"] == "ERROR"
    assert PLANTED not in _stored(ledger)


def test_a_dead_letter_and_its_reason_are_stored_redacted(ledger: Ledger) -> None:
    ledger.inbox.record(id="m2", kind="result", provider="fal", payload={"api_key": PLANTED})
    ledger.dead.record(
        message_id="m2",
        actor="process_result",
        queue="results",
        reason=f"StatusHTTPError url=https://api.example/x?token={PLANTED} auth=Bearer {PLANTED}",
        error_class="StatusHTTPError",
        message=json.dumps({"event": {"note": f"password={PLANTED}"}}),
        inbox_id="m2",
        permanent=True,
    )
    row = ledger.dead.get("m2")
    assert row is not None and row["reason"].startswith("StatusHTTPError url=https://api.example/x")
    item = ledger.inbox.get("m2")
    assert item is not None and item.state == "dead"
    assert item.payload == {"api_key": PLANTED}, "a dead event keeps what a replay needs"
    with ledger.db.read() as tx:
        dead = json.dumps([dict(r) for r in tx.all("dead_letters")])
        reason = tx.one("inbox_by_id", id="m2")
    assert reason is not None and PLANTED not in str(reason["dead_reason"])
    assert PLANTED not in dead


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_embedded_redis_answers_only_its_owner(tmp_path: Path) -> None:
    server = EmbeddedRedis(tmp_path / "home")
    url = server.ensure()
    try:
        port = redis.Redis.from_url(url).connection_pool.connection_kwargs["port"]
        stranger = redis.Redis(host="127.0.0.1", port=port, socket_timeout=5)
        with pytest.raises(redis.AuthenticationError):
            stranger.ping()
        stranger.close()
        owner = redis.Redis.from_url(url, socket_timeout=5)
        assert owner.ping()
        with pytest.raises(redis.ResponseError, match="unknown command"):
            owner.config_set("dir", str(tmp_path))
        owner.close()
        folder = tmp_path / "home" / "redis"
        assert _mode(folder) == 0o700
        files = [p for p in folder.rglob("*") if p.is_file()]
        assert {p.name for p in files} >= {"redis.json", "redis.conf", "redis.log"}
        assert {p.name: _mode(p) for p in files} == {p.name: 0o600 for p in files}
    finally:
        server.stop()


def test_every_folder_and_file_refundry_creates_is_its_owners_alone(tmp_path: Path) -> None:
    """Whichever creates the home folder first (here the embedded Redis, two missing parents
    above it), every folder it creates is 0700 and every file 0600, whatever the umask; a
    log reopened after an older version left it 0644 is narrowed."""
    home = tmp_path / "a" / "b" / "home"
    previous = os.umask(0o022)
    try:
        server = EmbeddedRedis(home)
        server.ensure()
        try:
            log = home / "demo-worker.log"
            log.write_text("left by an older version")
            log.chmod(0o644)
            with open_private(log, "ab") as reopened:
                reopened.write(b"more")
        finally:
            server.stop()
    finally:
        os.umask(previous)
    created = [tmp_path / "a", tmp_path / "a" / "b", *home.parent.rglob("*")]
    modes = {str(p.relative_to(tmp_path)): _mode(p) for p in created}
    assert modes == {str(p.relative_to(tmp_path)): 0o700 if p.is_dir() else 0o600 for p in created}
    assert {"a", "a/b", "a/b/home", "a/b/home/redis", "a/b/home/demo-worker.log"} <= set(modes)


def test_the_sqlite_ledger_is_readable_by_its_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "home" / "ledger.sqlite3"
    book = open_ledger(f"sqlite:///{path}", policy_version="t")
    try:
        book.grant(account_id="a", credits=1, idempotency_key="k", reason="t")
        assert _mode(path.parent) == 0o700
        for p in path.parent.glob("ledger.sqlite3*"):
            assert _mode(p) == 0o600, p.name
    finally:
        book.db.close()


def _every_stored_value(path: Path) -> str:
    """Every row of every table of a SQLite ledger, as one text to search."""
    conn = sqlite3.connect(path)
    try:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        rows = [list(conn.execute(f'SELECT * FROM "{table}"')) for table in tables]
    finally:
        conn.close()
    return json.dumps(rows, default=str)


def test_every_free_text_the_ledger_stores_passes_the_one_redaction(tmp_path: Path) -> None:
    """Grant and outcome reasons, a contradicting outcome's report, a refund's reason, pack and
    subscription decisions: each write choke point stores its free text redacted (a
    provider's error message may quote the credential it refused). The backend does not
    matter here: the redaction runs before any SQL."""
    path = tmp_path / "ledger.sqlite3"
    book = open_ledger(f"sqlite:///{path}", policy_version="t")
    secret = f"Authorization: Bearer {PLANTED}"
    try:
        book.grant(account_id="acct", credits=100, idempotency_key="top", reason=f"top-up {secret}")
        book.charge(
            generation_id="g1",
            account_id="acct",
            provider="kling",
            operation="video",
            credits=10,
            provider_job_id="k1",
        )
        for outcome in (Outcome.FAILED, Outcome.SUCCEEDED):  # the second is a conflict report
            book.settle(
                generation_id="g1",
                outcome=outcome,
                reason=f"bad key sk-proj-{PLANTED}",
                refund=outcome is Outcome.FAILED,
                failure_known_at_ms=1,
            )
        book.payments.observe(
            purchase_key="pi_1", provider="stripe", state="paid", account_id="acct", credits=5
        )
        book.payments.grant("pi_1", reason=f"paid {secret}")
        book.payments.begin_refund("pi_1", reason=f"token={PLANTED}", expected_state="granted")
        book.subscriptions.record_charge(
            invoice_id="in_1",
            subscription_id="sub_1",
            customer="cus_1",
            payment_intent="pi_2",
            amount=500,
            currency="usd",
            paid_at_ms=1,
        )
        book.subscriptions.keep("in_1", reason=f"kept; {secret}")
        stored = _every_stored_value(path)
    finally:
        book.db.close()
    assert stored.count(MASK) >= 7, "each planted reason was stored, masked"
    assert PLANTED not in stored

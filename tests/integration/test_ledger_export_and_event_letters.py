"""``refundry ledger export`` and the events out's dead letters through the command line, on
SQLite and PostgreSQL: the export streams every entry with its key, cause, event type,
policy version and times (the amounts add up to each balance; CSV and JSONL agree), and an
event the platform never took is listed by ``refundry dlq`` with its reason, shown on
``/metrics``, and replayed by id."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import sqlite3
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

from handlers.events_out import EventsOut, EventsOutConfig
from ledger import Ledger, audit
from ledger.outbox import EVENT_TYPES, Outbox, event_type
from tests.support.backends import ONE_BACKEND
from tests.support.commands import REFUNDRY, clean_env, refundry
from tests.support.event_receiver import EventReceiver
from workers.metrics import exposition, registry

SECRET = "whsec_" + "MTIzNDU2Nzg5MDEyMzQ1Njc4OTAxMjM0NTY3ODkwMTI="


def _fill(ledger: Ledger) -> None:
    for a in range(3):
        account = f"acct-{a}"
        ledger.grant(account_id=account, credits=100, idempotency_key=f"g-{a}", reason="=cmd|x")
        for g in range(4):
            ledger.charge(
                generation_id=f"gen-{a}-{g}",
                account_id=account,
                provider="kling",
                operation="video",
                credits=5,
            )


def test_the_export_round_trips_every_entry_in_csv_and_jsonl(
    ledger: Ledger, ledger_url: str, tmp_path: Path
) -> None:
    _fill(ledger)
    env = clean_env(tmp_path, DATABASE_URL=ledger_url)
    jsonl = refundry(env, "ledger", "export", "--since", "1h", "--format", "jsonl")
    assert jsonl.returncode == 0, jsonl.stderr
    records = [json.loads(line) for line in jsonl.stdout.splitlines()]
    assert len(records) == 3 * 5
    assert [r["entry_id"] for r in records] == sorted(r["entry_id"] for r in records)
    for a in range(3):
        account = f"acct-{a}"
        mine = [r for r in records if r["account_id"] == account]
        assert sum(r["amount"] for r in mine) == ledger.balance(account) == 80
    first = records[0]
    assert first["idempotency_key"] == "grant:g-0" and first["cause"] == "grant"
    assert first["event_type"] == "credits.granted" and first["policy_version"] == "test-1"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", first["created_at"])
    table = refundry(env, "ledger", "export", "--since", "1h", "--format", "csv")
    assert table.returncode == 0, table.stderr
    rows = list(csv.DictReader(io.StringIO(table.stdout)))
    assert [int(r["entry_id"]) for r in rows] == [r["entry_id"] for r in records]
    assert rows[0]["reason"] == "'=cmd|x"  # never a formula to a spreadsheet
    assert [int(r["amount"]) for r in rows] == [r["amount"] for r in records]
    empty = refundry(env, "ledger", "export", "--since", "2001-01-01", "--until", "2001-01-02")
    assert empty.returncode == 0 and empty.stdout == ""


def test_an_event_never_taken_is_a_dead_letter_listed_measured_and_replayed(
    ledger: Ledger, ledger_url: str, tmp_path: Path
) -> None:
    ledger.grant(account_id="acct-d", credits=7, idempotency_key="d-1", reason="t")
    now = [10**12 * 2]
    with EventReceiver(SECRET, script=lambda n: "fail") as failing:
        config = EventsOutConfig(url=failing.url, secret=SECRET, give_up_ms=1_000)
        sender = EventsOut(Outbox(ledger.db), config, clock=lambda: now[0])
        try:
            assert sender.deliver_due().retried == 1
            now[0] += 2_000
            assert sender.deliver_due().dead == 1
        finally:
            sender.close()
    env = clean_env(tmp_path, DATABASE_URL=ledger_url)
    listed = refundry(env, "dlq", "list", "--queue", "events_out")
    assert listed.returncode == 0, listed.stderr
    (letter,) = [json.loads(line) for line in listed.stdout.splitlines()]
    assert letter["reason"] == "EventNotDelivered attempts=2 last=HTTP 503"
    shown = refundry(env, "dlq", "show", letter["message_id"])
    assert shown.returncode == 0 and "credits.granted" in shown.stdout
    assert SECRET not in shown.stdout + listed.stdout
    page = exposition(registry(lambda: ledger, sla_ms=3_600_000, landing_window_ms=3_600_000))
    assert b'refundry_dead_letters{queue="events_out",reason="EventNotDelivered"} 1.0' in page
    assert b'refundry_events_out_total{result="retried"} 1.0' in page
    replayed = refundry(env, "dlq", "replay", letter["message_id"])
    assert replayed.returncode == 0, replayed.stderr
    assert Outbox(ledger.db).figures().pending == 1
    gone = refundry(env, "dlq", "show", letter["message_id"])
    assert gone.returncode == 3


@ONE_BACKEND
def test_every_entry_kind_the_schema_allows_has_a_named_event_type(ledger: Ledger) -> None:
    path = ledger.db.path  # type: ignore[attr-defined]
    with sqlite3.connect(path) as conn:
        (sql,) = conn.execute("SELECT sql FROM sqlite_master WHERE name = 'entries'").fetchone()
        (trigger,) = conn.execute(
            "SELECT count(*) FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'entries'"
        ).fetchone()
    assert trigger == 1  # a migration that rebuilt the table would have dropped it
    kinds = re.search(r"kind IN \(([^)]*)\)", sql)
    assert kinds is not None
    allowed = {k.strip().strip("'") for k in kinds[1].split(",")}
    listed = {kind for kind, _, _ in EVENT_TYPES}
    assert allowed <= listed, allowed - listed
    assert not any(event_type(k, f"{k}:x").startswith("ledger.") for k in allowed)


@ONE_BACKEND
def test_ledger_check_finds_an_entry_without_its_event(ledger: Ledger) -> None:
    ledger.grant(account_id="acct-a", credits=4, idempotency_key="a-1", reason="t")
    assert audit(ledger.db) == []
    with sqlite3.connect(ledger.db.path) as conn:  # type: ignore[attr-defined]
        conn.execute("DELETE FROM outbox")  # as if a migration had dropped the trigger
    (violation,) = audit(ledger.db)
    assert (violation.invariant, violation.check) == (8, "entry_without_event")
    assert violation.detail["idempotency_key"] == "grant:a-1"


def test_the_export_honours_milliseconds_and_a_future_until(
    ledger: Ledger, ledger_url: str, tmp_path: Path
) -> None:
    _fill(ledger)
    env = clean_env(tmp_path, DATABASE_URL=ledger_url)

    def created(*bounds: str) -> list[str]:
        done = refundry(env, "ledger", "export", *bounds)
        assert done.returncode == 0, done.stderr
        return [json.loads(line)["created_at"] for line in done.stdout.splitlines()]

    every = created("--since", "1h")
    assert len(every) == 15
    cuts = sorted(set(every))[1:]
    assert cuts, "the entries were all written in one millisecond"
    for cut in cuts:  # ISO with milliseconds, and epoch seconds with a fraction
        moment = datetime.fromisoformat(cut)
        epoch = f"{int(moment.timestamp())}.{moment.microsecond // 1000:03d}"
        assert created("--since", cut) == [c for c in every if c >= cut]
        assert created("--since", epoch) == [c for c in every if c >= cut]
        assert created("--since", "1h", "--until", cut) == [c for c in every if c < cut]
    ahead = (datetime.now(UTC) + timedelta(days=2)).date().isoformat()  # this month's end
    assert created("--since", "1h", "--until", ahead) == every
    for nonsense in ("2200-01-01", "1969-12-31", "99999999999"):
        refused = refundry(env, "ledger", "export", "--since", "1h", "--until", nonsense)
        assert refused.returncode == 2 and "Traceback" not in refused.stderr


def test_an_export_to_a_full_disk_or_a_closed_pipe_ends_in_one_line_without_a_traceback(
    ledger: Ledger, ledger_url: str, tmp_path: Path
) -> None:
    _fill(ledger)
    env = clean_env(tmp_path, DATABASE_URL=ledger_url)
    command = [str(REFUNDRY), "ledger", "export", "--since", "1h", "--format", "csv"]
    with open("/dev/full", "w") as full:
        done = subprocess.run(command, env=env, stdout=full, stderr=subprocess.PIPE, text=True)
    assert done.returncode != 0
    assert "Traceback" not in done.stderr and "Exception ignored" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and "No space left" in done.stderr
    read, write = os.pipe()
    os.close(read)  # the reader is gone before the first byte
    try:
        closed = subprocess.run(command, env=env, stdout=write, stderr=subprocess.PIPE, text=True)
    finally:
        os.close(write)
    assert closed.returncode != 0 and closed.stderr == ""

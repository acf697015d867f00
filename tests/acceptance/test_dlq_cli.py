"""``refundry dlq``: an on-call engineer lists, reads, replays and purges dead letters."""

from __future__ import annotations

import json
from pathlib import Path

import redis

from ledger import open_ledger
from tests.support.commands import clean_env, refundry


def _dead_event(url: str, inbox_id: str) -> None:
    book = open_ledger(url, policy_version="t")
    try:
        book.inbox.record(id=inbox_id, kind="result", provider="kling", payload={"id": "j"})
        book.dead.record(
            message_id=inbox_id,
            actor="process_result",
            queue="results",
            reason="Unclassifiable provider=kling field=status",
            error_class="Unclassifiable",
            message='{"event": "redacted"}',
            inbox_id=inbox_id,
            permanent=True,
        )
    finally:
        book.db.close()


def test_list_and_show_give_the_reason(tmp_path: Path) -> None:
    env = clean_env(tmp_path)
    _dead_event(env["DATABASE_URL"], "m1")
    listed = refundry(env, "dlq", "list")
    assert listed.returncode == 0
    [row] = [json.loads(line) for line in listed.stdout.splitlines()]
    assert row["message_id"] == "m1" and row["reason"].startswith("Unclassifiable")
    shown = refundry(env, "dlq", "show", "m1")
    assert shown.returncode == 0 and json.loads(shown.stdout)["error_class"] == "Unclassifiable"
    missing = refundry(env, "dlq", "show", "nope")
    assert (missing.returncode, missing.stdout) == (3, "")
    assert missing.stderr.startswith("refundry: DeadLetterNotFound: no dead letter")
    assert "message_id='nope'" in missing.stderr


def test_replay_reopens_the_event_and_enqueues_it(tmp_path: Path, redis_url: str) -> None:
    env = clean_env(tmp_path, REDIS_URL=redis_url)
    _dead_event(env["DATABASE_URL"], "m1")
    replayed = refundry(env, "dlq", "replay", "m1")
    assert replayed.returncode == 0, replayed.stderr
    assert json.loads(replayed.stdout) == {"replayed": "m1", "enqueued": True}
    r = redis.Redis.from_url(redis_url)
    assert r.llen("refundry:results") == 1
    r.close()
    book = open_ledger(env["DATABASE_URL"], policy_version="t")
    item = book.inbox.get("m1")
    assert item is not None and item.state == "pending"
    assert book.dead.all() == []
    book.db.close()


def test_purge_forgets_the_letter_and_keeps_the_event_closed(tmp_path: Path) -> None:
    env = clean_env(tmp_path)
    _dead_event(env["DATABASE_URL"], "m1")
    purged = refundry(env, "dlq", "purge", "m1")
    assert purged.returncode == 0
    book = open_ledger(env["DATABASE_URL"], policy_version="t")
    item = book.inbox.get("m1")
    assert item is not None and item.state == "dead"
    assert book.dead.all() == []
    book.db.close()


def test_list_filters_by_queue_reason_and_provider(tmp_path: Path) -> None:
    env = clean_env(tmp_path)
    _dead_event(env["DATABASE_URL"], "m1")

    def listed(*options: str) -> list[str]:
        done = refundry(env, "dlq", "list", *options)
        assert done.returncode == 0, done.stderr
        return [json.loads(line)["message_id"] for line in done.stdout.splitlines()]

    assert listed("--queue", "results", "--reason", "Unclassifiable", "--provider", "kling") == [
        "m1"
    ]
    assert listed("--queue", "payments") == []
    assert listed("--reason", "ChargeNotFound") == []
    assert listed("--provider", "fal") == []

"""The HTTP API's idempotency keys in the ledger, on SQLite and PostgreSQL: a new key is
claimed, the same request gets the kept answer, another request or one still in flight is
refused, a dead attempt is taken over after its lease, and keys are kept 24 hours then
purged. Times are passed in (``at_ms``), never slept for."""

from __future__ import annotations

import pytest

from ledger import Ledger
from ledger.api_idempotency import IN_FLIGHT_LEASE_MS, KEEP_MS, ApiIdempotency, Claimed, Replay
from ledger.errors import IdempotencyConflict, IdempotencyKeyInUse

T0 = 1_800_000_000_000


def _keys(ledger: Ledger) -> ApiIdempotency:
    return ApiIdempotency(ledger.db)


def test_the_first_request_claims_and_the_same_request_gets_its_answer_again(
    ledger: Ledger,
) -> None:
    keys = _keys(ledger)
    claimed = keys.claim(scope="s1", key="k1", fingerprint="f1", at_ms=T0)
    assert isinstance(claimed, Claimed)
    assert keys.finish(claimed, status=200, body='{"balance":5}')
    again = keys.claim(scope="s1", key="k1", fingerprint="f1", at_ms=T0 + 1000)
    assert again == Replay(200, '{"balance":5}')


def test_the_same_key_with_another_request_is_refused(ledger: Ledger) -> None:
    keys = _keys(ledger)
    claimed = keys.claim(scope="s1", key="k1", fingerprint="f1", at_ms=T0)
    assert isinstance(claimed, Claimed)
    keys.finish(claimed, status=200, body="{}")
    with pytest.raises(IdempotencyConflict):
        keys.claim(scope="s1", key="k1", fingerprint="f2", at_ms=T0 + 1)


def test_keys_are_scoped_per_api_key(ledger: Ledger) -> None:
    keys = _keys(ledger)
    first = keys.claim(scope="s1", key="k1", fingerprint="f1", at_ms=T0)
    second = keys.claim(scope="s2", key="k1", fingerprint="f2", at_ms=T0)
    assert isinstance(first, Claimed) and isinstance(second, Claimed)


def test_a_request_in_flight_refuses_the_same_key_until_its_lease_runs_out(ledger: Ledger) -> None:
    keys = _keys(ledger)
    first = keys.claim(scope="s1", key="k1", fingerprint="f1", at_ms=T0)
    assert isinstance(first, Claimed)
    with pytest.raises(IdempotencyKeyInUse):
        keys.claim(scope="s1", key="k1", fingerprint="f1", at_ms=T0 + IN_FLIGHT_LEASE_MS - 1)
    taken = keys.claim(scope="s1", key="k1", fingerprint="f1", at_ms=T0 + IN_FLIGHT_LEASE_MS)
    assert isinstance(taken, Claimed) and taken.attempt != first.attempt
    assert not keys.finish(first, status=200, body='{"late":true}'), "the dead attempt finished"
    assert keys.finish(taken, status=200, body='{"ok":true}')
    assert keys.claim(
        scope="s1", key="k1", fingerprint="f1", at_ms=T0 + IN_FLIGHT_LEASE_MS + 1
    ) == (Replay(200, '{"ok":true}'))


def test_a_released_key_runs_afresh(ledger: Ledger) -> None:
    keys = _keys(ledger)
    first = keys.claim(scope="s1", key="k1", fingerprint="f1", at_ms=T0)
    assert isinstance(first, Claimed)
    keys.release(first)
    assert isinstance(keys.claim(scope="s1", key="k1", fingerprint="f2", at_ms=T0 + 1), Claimed)


def test_keys_are_kept_24_hours_then_purged(ledger: Ledger) -> None:
    keys = _keys(ledger)
    claimed = keys.claim(scope="s1", key="k1", fingerprint="f1", at_ms=T0)
    assert isinstance(claimed, Claimed)
    keys.finish(claimed, status=200, body="{}")
    assert keys.purge(at_ms=T0 + KEEP_MS - 1) == 0
    assert keys.claim(scope="s1", key="k1", fingerprint="f1", at_ms=T0 + KEEP_MS - 1) == Replay(
        200, "{}"
    )
    # Expired but not purged yet: a new key, whatever the body.
    renewed = keys.claim(scope="s1", key="k1", fingerprint="f9", at_ms=T0 + KEEP_MS)
    assert isinstance(renewed, Claimed)
    keys.finish(renewed, status=201, body="[]")
    other = keys.claim(scope="s1", key="k2", fingerprint="f1", at_ms=T0)
    assert isinstance(other, Claimed)
    assert keys.purge(at_ms=T0 + KEEP_MS) == 1  # k2, made at T0; k1 was renewed at T0 + KEEP
    assert keys.claim(scope="s1", key="k1", fingerprint="f9", at_ms=T0 + KEEP_MS + 5) == Replay(
        201, "[]"
    )


def test_claims_purge_expired_keys_once_a_minute(ledger: Ledger) -> None:
    early = _keys(ledger)
    old = early.claim(scope="s1", key="old", fingerprint="f", at_ms=T0)
    assert isinstance(old, Claimed)
    early.finish(old, status=200, body="{}")
    keys = _keys(ledger)  # a process started later
    assert isinstance(keys.claim(scope="s1", key="a", fingerprint="f", at_ms=T0 + KEEP_MS), Claimed)
    assert keys.purge(at_ms=T0 + KEEP_MS) == 0, "the first claim did not purge the expired key"
    recent = keys.claim(scope="s1", key="b", fingerprint="f", at_ms=T0 + KEEP_MS + 1)
    assert isinstance(recent, Claimed)
    # Within the minute no claim purges again (the purge is not per request).
    stale = keys.claim(scope="s1", key="c", fingerprint="f", at_ms=T0)
    assert isinstance(stale, Claimed)
    assert isinstance(
        keys.claim(scope="s1", key="d", fingerprint="f", at_ms=T0 + KEEP_MS + 2), Claimed
    )
    assert keys.purge(at_ms=T0 + KEEP_MS + 2) == 1  # "c"

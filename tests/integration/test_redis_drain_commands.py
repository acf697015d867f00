"""The README's drain step counts what dramatiq's Redis broker really keeps: its commands,
run against a real Redis, answer 0 only when no message of Refundry's is left, whether
queued, delayed or fetched by a worker and not yet acknowledged."""

from __future__ import annotations

import re
from pathlib import Path

import redis
from dramatiq import Message
from dramatiq.brokers.redis import RedisBroker

from workers.broker import NAMESPACE

README = Path(__file__).resolve().parents[2] / "README.md"


def _drain_commands() -> list[list[str]]:
    text = README.read_text(encoding="utf-8")
    section = text[text.index("**Drain (no delay):**") : text.index("**Re-sweep")]
    commands = re.findall(r"`((?:[A-Z]+) refundry:[^`]+)`", section)
    assert commands, "the drain step names no Redis command"
    return [command.split() for command in commands]


def _held(client: redis.Redis) -> int:
    total = 0
    for command in _drain_commands():
        total += int(client.execute_command(*command))  # type: ignore[no-untyped-call]
    return total


def test_the_drain_commands_count_queued_delayed_and_unacknowledged_messages(
    redis_url: str,
) -> None:
    broker = RedisBroker(url=redis_url, namespace=NAMESPACE)  # type: ignore[no-untyped-call]
    client = redis.Redis.from_url(redis_url)
    try:
        for queue in ("results", "payments"):
            broker.declare_queue(queue)
            broker.enqueue(Message(queue, "a", (), {}, {}))
            broker.enqueue(Message(queue, "a", (), {}, {}), delay=3_600_000)
        assert _held(client) == 4  # queued and delayed
        consumers = [
            broker.consume(queue, prefetch=10, timeout=100)
            for queue in ("results", "results.DQ", "payments", "payments.DQ")
        ]
        fetched = [next(consumer) for consumer in consumers]
        assert all(message is not None for message in fetched)
        assert client.llen(f"{NAMESPACE}:results") == 0  # a queue's length no longer shows it
        assert _held(client) == 4  # fetched, not yet acknowledged
        for consumer, message in zip(consumers, fetched, strict=True):
            assert message is not None
            consumer.ack(message)
        assert _held(client) == 0
    finally:
        broker.close()
        client.close()

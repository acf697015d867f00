"""A running worker's broker lines: an outage is named as one, and a channel RabbitMQ closed
because a delivery outlived its ``consumer_timeout`` is named as that (the server was up)."""

from __future__ import annotations

import logging

import pika.exceptions
from dramatiq.errors import ConnectionClosed

from workers.consumer_logs import RedisOutageLog

AMQP = "amqp://refundry:s3cr%2Fet@rabbit.internal:5672/refundry"
# What pika raises when RabbitMQ closes the channel for a delivery held too long
# (https://www.rabbitmq.com/docs/consumers#acknowledgement-timeout), as dramatiq logs it.
TIMED_OUT = pika.exceptions.ChannelClosedByBroker(
    406,
    "PRECONDITION_FAILED - delivery acknowledgement on channel 1 timed out. Timeout value "
    "used: 60000 ms. This timeout value can be configured, see consumers doc guide to learn "
    "more",
)


def _line(error: Exception) -> str:
    record = logging.LogRecord(
        "dramatiq.worker.ConsumerThread(results)",
        logging.CRITICAL,
        __file__,
        1,
        "Consumer encountered a connection error: %s",
        (ConnectionClosed(error),),  # type: ignore[no-untyped-call]
        None,
    )
    assert RedisOutageLog(AMQP).filter(record)
    assert record.levelno == logging.WARNING
    return record.getMessage()


def test_a_delivery_timeout_is_named_as_such_not_as_an_unreachable_server() -> None:
    line = _line(TIMED_OUT)
    assert "cannot reach" not in line
    assert "consumer_timeout" in line and "60000 ms" in line
    assert "REFUNDRY_RABBITMQ_CONSUMER_TIMEOUT_MS" in line
    assert "rabbit.internal" in line and "s3cr" not in line


def test_a_lost_connection_is_still_an_outage() -> None:
    line = _line(pika.exceptions.AMQPConnectionError("Connection refused"))
    assert line.startswith("cannot reach RabbitMQ at amqp://refundry@rabbit.internal:5672/")
    assert "s3cr" not in line


def test_a_refusal_by_the_server_is_told_apart_from_an_outage_in_the_wait_lines() -> None:
    from workers.dependencies import lasting_broker_error

    vhost = pika.exceptions.ConnectionClosedByBroker(530, "NOT_ALLOWED - vhost x not found")
    password = pika.exceptions.ConnectionClosedByBroker(403, "ACCESS_REFUSED - Login was refused")
    assert lasting_broker_error(vhost) and lasting_broker_error(password)
    assert not lasting_broker_error(pika.exceptions.AMQPConnectionError("Connection refused"))
    assert not lasting_broker_error(pika.exceptions.ConnectionClosedByBroker(320, "shutdown"))

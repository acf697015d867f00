"""``BROKER_URL`` picks the broker; ``REDIS_URL`` keeps working; nothing repeats a password."""

from __future__ import annotations

import pytest

from ledger.errors import ConfigurationError
from workers.broker_urls import broker_location, select_broker
from workers.budgets import Budgets
from workers.settings import Settings

AMQP = "amqp://refundry:pa%2Fss@rabbit.internal:5672/refundry"


@pytest.mark.parametrize(
    ("env", "chosen"),
    [
        ({}, (None, None)),
        ({"REDIS_URL": "redis://r:6379/0"}, ("redis://r:6379/0", None)),
        ({"BROKER_URL": "redis://r:6379/1"}, ("redis://r:6379/1", None)),
        (
            {"BROKER_URL": "redis://r:6379/0", "REDIS_URL": "redis://r:6379/0"},
            ("redis://r:6379/0", None),
        ),
        ({"BROKER_URL": AMQP}, (None, AMQP)),
    ],
)
def test_the_url_selects_the_broker(
    env: dict[str, str], chosen: tuple[str | None, str | None]
) -> None:
    assert select_broker(env) == chosen


@pytest.mark.parametrize(
    "env",
    [
        {"BROKER_URL": "kafka://k:9092"},
        {"BROKER_URL": "amqp://u:pa ss@h/v"},
        {"BROKER_URL": "amqp://u:p@h1,h2/v"},
        {"BROKER_URL": "redis://r:6379/x"},
        {"BROKER_URL": "redis://r:6379/0", "REDIS_URL": "redis://other:6379/0"},
        {"BROKER_URL": AMQP, "REDIS_URL": "redis://old:6379/0"},
    ],
)
def test_an_unusable_broker_url_is_refused_naming_the_variable_never_the_password(
    env: dict[str, str],
) -> None:
    with pytest.raises(ConfigurationError) as refused:
        select_broker(env)
    assert refused.value.fields["variable"] == "BROKER_URL"
    assert "pa ss" not in str(refused.value) and "://" not in str(refused.value.fields["variable"])


def test_the_printed_location_has_no_password() -> None:
    assert broker_location(None, AMQP) == "amqp://refundry@rabbit.internal:5672/refundry"
    assert broker_location("redis://:pw@r:6379/0", None) == "redis://r:6379/0"
    assert broker_location(None, None) is None


def test_delays_are_bounded_by_half_the_consumer_timeout_on_rabbitmq_only() -> None:
    base = {"REFUNDRY_HOME": "/nonexistent-home", "REFUNDRY_MAX_BACKOFF_MS": "900001"}
    Budgets(Settings.from_env(base)).check_rabbitmq()  # Redis: nothing to hold unacked
    with pytest.raises(ConfigurationError) as refused:
        Budgets(Settings.from_env(base | {"BROKER_URL": AMQP})).check_rabbitmq()
    assert refused.value.fields["variable"] == "REFUNDRY_MAX_BACKOFF_MS"
    fits = base | {"BROKER_URL": AMQP, "REFUNDRY_MAX_BACKOFF_MS": "900000"}
    Budgets(Settings.from_env(fits)).check_rabbitmq()
    raised = base | {"BROKER_URL": AMQP, "REFUNDRY_RABBITMQ_CONSUMER_TIMEOUT_MS": "3600000"}
    Budgets(Settings.from_env(raised)).check_rabbitmq()


@pytest.mark.parametrize("variable", ["BROKER_URL", "REDIS_URL"])
@pytest.mark.parametrize("value", ["", " ", "\t"])
def test_a_blank_broker_url_is_refused_not_taken_for_the_embedded_redis(
    variable: str, value: str
) -> None:
    with pytest.raises(ConfigurationError) as refused:
        select_broker({variable: value})
    assert refused.value.fields["variable"] == variable


def test_an_actor_time_limit_must_fit_the_consumer_timeout_as_a_delay_does() -> None:
    env = {
        "REFUNDRY_HOME": "/nonexistent-home",
        "BROKER_URL": AMQP,
        "REFUNDRY_RABBITMQ_CONSUMER_TIMEOUT_MS": "60000",
        "REFUNDRY_MAX_BACKOFF_MS": "30000",
    }
    budgets = Budgets(Settings.from_env(env))
    assert budgets.payment_time_limit_ms > 30_000  # the delays alone would fit
    with pytest.raises(ConfigurationError) as refused:
        budgets.check_rabbitmq()
    assert refused.value.fields["variable"] == "REFUNDRY_RABBITMQ_CONSUMER_TIMEOUT_MS"
    assert refused.value.fields["longest_time_limit_ms"] == budgets.payment_time_limit_ms
    longest = max(budgets.payment_time_limit_ms, budgets.result_time_limit_ms)
    fits = env | {"REFUNDRY_RABBITMQ_CONSUMER_TIMEOUT_MS": str(2 * longest)}
    Budgets(Settings.from_env(fits)).check_rabbitmq()
    short = env | {"REFUNDRY_RABBITMQ_CONSUMER_TIMEOUT_MS": str(2 * longest - 1)}
    with pytest.raises(ConfigurationError):
        Budgets(Settings.from_env(short)).check_rabbitmq()


RABBIT = "amqp://refundry:QAPW%2Fx@rabbit.internal:5672/refundry"


@pytest.mark.parametrize(
    "query",
    [
        "heartbeat=30",
        "heartbeat=0",
        "connection_attempts=3&retry_delay=2.5",
        "socket_timeout=5&stack_timeout=15&blocked_connection_timeout=60",
        "channel_max=100&frame_max=131072&locale=en_US",
        "ssl_options=None",
    ],
)
def test_pikas_documented_query_parameters_with_valid_values_are_accepted(query: str) -> None:
    url = f"{RABBIT}?{query}"
    assert select_broker({"BROKER_URL": url}) == (None, url)


@pytest.mark.parametrize(
    ("url", "parameter"),
    [
        (f"{RABBIT}?foo=1", "foo"),
        (f"{RABBIT}?connection_timeout=5000", "connection_timeout"),  # RabbitMQ's, not pika's
        (f"{RABBIT}?heartbeat=abc", "heartbeat"),
        (f"{RABBIT}?heartbeat=1&heartbeat=2", "heartbeat"),
        (f"{RABBIT}?frame_max=1", "frame_max"),
        (f"{RABBIT}?ssl_options=x", "ssl_options"),
        (f"{RABBIT}?ssl_options=%7B%27cafile%27%3A%27%2Fno%2Fsuch.pem%27%7D", "ssl_options"),
        (f"{RABBIT.replace('amqp:', 'amqps:')}?ssl_options=None", "ssl_options"),
        (f"{RABBIT}?heartbeat", "heartbeat"),
    ],
)
def test_an_unknown_or_malformed_query_parameter_is_refused_by_name_before_pika_sees_it(
    url: str, parameter: str
) -> None:
    with pytest.raises(ConfigurationError) as refused:
        select_broker({"BROKER_URL": url})
    assert refused.value.fields["variable"] == "BROKER_URL"
    assert refused.value.fields["parameter"] == parameter
    assert "QAPW" not in f"{refused.value} {refused.value.reason}"


@pytest.mark.parametrize("path", ["/a/b", "/refundry/", "//x"])
def test_a_vhost_of_more_than_one_segment_is_refused(path: str) -> None:
    with pytest.raises(ConfigurationError) as refused:
        select_broker({"BROKER_URL": f"amqp://u:QAPW@rabbit.internal:5672{path}"})
    assert refused.value.fields["variable"] == "BROKER_URL"
    assert "%2F" in str(refused.value)


@pytest.mark.parametrize("path", ["", "/", "/%2F", "/a%2Fb", "/refundry"])
def test_a_vhost_of_one_percent_encoded_segment_or_none_is_accepted(path: str) -> None:
    url = f"amqp://u:p@rabbit.internal:5672{path}"
    assert select_broker({"BROKER_URL": url}) == (None, url)

"""Sentry's settings and scrubbing, without a network: a DSN that cannot be used is refused
naming its variable (never repeating it), an event is scrubbed as dead letters are, and each
sweep's Crons monitor has a schedule Sentry accepts."""

from __future__ import annotations

from typing import Any

import pytest
import sentry_sdk
from sentry_sdk.utils import event_from_exception

from ledger.errors import ChargeNotFound, ConfigurationError, Unclassifiable
from ledger.redaction import MASK
from providers.stripe_api import PaymentProviderUnavailable
from workers.sentry_setup import monitor_config, scrub_breadcrumb, scrub_event
from workers.settings import Settings

PLANTED = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def test_sentry_is_off_by_default_and_logs_are_text() -> None:
    settings = Settings.from_env({})
    assert settings.sentry_dsn == ""
    assert settings.log_format == "text"


@pytest.mark.parametrize("dsn", ["not a dsn", f"ftp://{PLANTED}@sentry.example/1"])
def test_an_unusable_dsn_is_refused_naming_the_variable_not_the_value(dsn: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        Settings.from_env({"SENTRY_DSN": dsn})
    assert caught.value.fields["variable"] == "SENTRY_DSN"
    assert PLANTED not in str(caught.value)


def test_a_log_format_other_than_text_or_json_is_refused() -> None:
    with pytest.raises(ConfigurationError):
        Settings.from_env({"REFUNDRY_LOG_FORMAT": "xml"})


def test_an_event_and_a_breadcrumb_lose_secrets_signatures_and_email_addresses() -> None:
    event = {
        "message": f"refund for jane@example.com failed with {PLANTED}",
        "request": {"headers": {"Stripe-Signature": "t=1,v1=abc"}, "data": "{}"},
        "fingerprint": ["dead-letter", "fal", "Unclassifiable"],
        "tags": {"provider": "fal", "reason": "Unclassifiable"},
    }
    scrubbed = scrub_event(event, {})
    assert PLANTED not in str(scrubbed) and "jane@example.com" not in str(scrubbed)
    assert scrubbed["request"]["headers"]["Stripe-Signature"] == MASK
    assert scrubbed["fingerprint"] == event["fingerprint"]  # what groups it is kept
    assert scrubbed["tags"] == event["tags"]
    crumb = scrub_breadcrumb({"message": "sent to ops@example.org", "category": "log"}, {})
    assert crumb == {"message": f"sent to {MASK}", "category": "log"}


@pytest.mark.parametrize(("every_s", "minutes"), [(1, 1), (10, 1), (60, 1), (61, 2), (300, 5)])
def test_a_sweeps_monitor_is_an_interval_schedule_in_whole_minutes(
    every_s: int, minutes: int
) -> None:
    config = monitor_config(every_s)
    assert config["schedule"] == {"type": "interval", "value": minutes, "unit": "minute"}
    assert config["max_runtime"] >= minutes


def _dramatiq_report(exc: BaseException) -> tuple[dict[str, Any], dict[str, Any]]:
    """The event and hint sentry-sdk's dramatiq integration captures for a failed attempt."""
    try:
        raise exc
    except BaseException as raised:
        event, hint = event_from_exception(
            raised,
            client_options=sentry_sdk.get_client().options,
            mechanism={"type": "dramatiq", "handled": False},
        )
    return dict(event), dict(hint)


@pytest.mark.parametrize(
    "exc",
    [
        ChargeNotFound("no charge", generation_id="g1"),
        Unclassifiable("no status"),
        PaymentProviderUnavailable("stripe down", status=503),
    ],
)
def test_no_untagged_duplicate_events_for_errors_refundry_retries_and_dead_letters(
    exc: BaseException,
) -> None:
    """Refundry's own errors are retried, then dead-lettered and alerted once, tagged
    (``handlers.alerts``): the dramatiq integration's report of each attempt is dropped."""
    assert scrub_event(*_dramatiq_report(exc)) is None


def test_no_untagged_duplicate_events_keeps_unexpected_errors_and_the_alerts() -> None:
    event, hint = _dramatiq_report(ZeroDivisionError("division by zero"))
    kept = scrub_event(event, hint)
    assert kept is not None
    assert kept["exception"]["values"][-1]["type"] == "ZeroDivisionError"
    alert = {"message": "dead-lettered: ChargeNotFound", "fingerprint": ["dead-letter"]}
    assert scrub_event(alert, {}) == alert  # an alert is a message, never an exception

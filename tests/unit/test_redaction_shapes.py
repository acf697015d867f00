"""More secret shapes are masked by value wherever they stand: a URL without a scheme that
carries a password, connection strings, a DSN's key in a URL's user part, SendGrid and
Twilio keys, HAR-style header objects, and the credentials in a value whose key names a
connection URL."""

from __future__ import annotations

import json
from typing import Any

import pytest

from ledger.redaction import MASK, redact, redact_text

HEX32 = "0123456789abcdef0123456789abcdef"


@pytest.mark.parametrize(
    "text",
    [
        "proxy at //admin:ZQX60pw@host:8080/path failed",
        "DefaultEndpointsProtocol=https;AccountName=acme;AccountKey=ZQX28abcdef+/==;EndpointSuffix=x",
        "Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=root;SharedAccessKey=ZQX29abc=",
        "dsn https://ZQX43abcdef0123456789abcdef01@o0.ingest.sentry.io/1 refused",
        "key SG.ZQX45abcdefghij.ZQX46abcdefghijklmnop rejected",
        f"api key SK{HEX32} is not valid",
    ],
)
def test_kind_secret_shape_is_masked_by_value(text: str) -> None:
    shown = redact_text(text)
    assert "ZQX" not in shown and HEX32 not in shown, shown
    assert MASK in shown
    assert redact_text(json.dumps({"error": text})).count("ZQX") == 0


def test_kind_secret_shape_har_headers_are_masked() -> None:
    har: dict[str, Any] = {
        "headers": [
            {"name": "Authorization", "value": "ZQXB3a"},
            {"name": "x-api-key", "value": "ZQXB4a", "comment": "kept"},
            {"name": "Content-Type", "value": "application/json"},
        ]
    }
    shown = redact(har)
    assert "ZQX" not in json.dumps(shown)
    assert shown["headers"][1]["comment"] == "kept"
    assert shown["headers"][2] == {"name": "Content-Type", "value": "application/json"}


@pytest.mark.parametrize("key", ["DATABASE_URL", "REDIS_URL", "databaseUrl", "BROKER_URL"])
def test_kind_secret_shape_connection_url_keys_lose_their_credentials(key: str) -> None:
    assert "ZQX" not in json.dumps(redact({key: "ZQXA8a"}))
    shown = redact({key: "postgresql://app:ZQXA9pw@db.internal:5432/refundry"})[key]
    assert "ZQX" not in shown and shown.startswith("postgresql://app:")
    assert redact({"CALLBACK_URL": "https://example.com/cb"}) == {
        "CALLBACK_URL": "https://example.com/cb"
    }

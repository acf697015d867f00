"""A secret is masked in the text as it will be shown: a reason built from ``repr()`` or
JSON (a tab shown as ``\\t``, a newline as ``\\n``) loses its credential as plain text does,
in every sink that shows it (an outcome's reason, an error's reason and message, a dead
letter's reason, a log line, ``refundry classify``)."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable
from pathlib import Path

import pytest

from ledger.errors import Unclassifiable
from ledger.redaction import MASK, redact_text
from providers.common import short
from providers.registry import classify
from tests.support.commands import clean_env, refundry
from workers.dead_letters import reason_of
from workers.logs import install_redaction

SPLIT_SECRETS = [
    "Authorization: Bearer\tZQXC1abcdef0123456789",
    "Bearer\nZQXC2abcdef0123456789",
    "password=\tZQXC3hunter2",
    "token:\r\nZQXC4abcdef0123",
    "api_key = \n ZQXC5abcdef0123",
]
PEM = (
    "-----BEGIN RSA PRIVATE KEY-----\nZQXC6MIIEowIBAAKCAQEA\nZQXC7abc\n"
    "-----END RSA PRIVATE KEY-----"
)
VIEWS: dict[str, Callable[[str], str]] = {
    "plain": str,
    "repr": repr,
    "json": json.dumps,
    "short": lambda text: short(text, 400),
    "field": lambda text: str(Unclassifiable("unknown status", value=text)),
}


@pytest.mark.parametrize("view", sorted(VIEWS))
@pytest.mark.parametrize("secret", [*SPLIT_SECRETS, PEM])
def test_kind_escaped_whitespace_secret_is_masked_in_every_view(secret: str, view: str) -> None:
    shown = redact_text(VIEWS[view](secret))
    assert "ZQXC" not in shown, shown
    assert MASK in shown


@pytest.mark.parametrize("secret", SPLIT_SECRETS)
def test_kind_escaped_whitespace_secret_is_masked_in_reasons_and_dead_letters(
    secret: str,
) -> None:
    failed = classify("replicate", {"id": "p1", "status": "failed", "error": secret})
    assert "ZQXC" not in redact_text(failed.reason)
    with pytest.raises(Unclassifiable) as caught:
        classify("replicate", {"id": "p1", "status": secret})
    assert "ZQXC" not in str(caught.value)
    assert "ZQXC" not in caught.value.reason
    assert "ZQXC" not in reason_of(caught.value)


def test_kind_escaped_whitespace_secret_is_masked_in_log_lines() -> None:
    install_redaction()
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    logger = logging.getLogger("refundry.test.escaped")
    logger.addHandler(handler)
    try:
        for secret in SPLIT_SECRETS:
            logger.warning("dead-lettered: %r", secret)
    finally:
        logger.removeHandler(handler)
    assert "ZQXC" not in stream.getvalue()
    assert stream.getvalue().count(MASK) == len(SPLIT_SECRETS)


def test_kind_escaped_whitespace_secret_is_masked_by_refundry_classify(tmp_path: Path) -> None:
    file = tmp_path / "p.json"
    for number, secret in enumerate(SPLIT_SECRETS):
        file.write_text(json.dumps({"id": f"p{number}", "status": "failed", "error": secret}))
        done = refundry(clean_env(tmp_path), "classify", "--provider", "replicate", str(file))
        assert done.returncode == 0, done.stderr
        assert "ZQXC" not in done.stdout, done.stdout

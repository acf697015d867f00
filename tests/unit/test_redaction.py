"""Secrets never leave in clear text: one redaction, by key name and by value, that no input
can stall or crash."""

from __future__ import annotations

import io
import json
import logging
import time

import pytest

from ledger.errors import ChargeNotFound
from ledger.redaction import MASK, MAX_DEPTH, MAX_STRING_CHARS, redact, redact_text
from workers.logs import install_redaction

PLANTED = "s3cr3t-Planted-Value-0042"


def test_secret_named_keys_are_masked_at_any_depth() -> None:
    body = {
        "api_key": "sk-1",
        "nested": [{"Authorization": "Bearer x", "ok": 1}],
        "webhook_secret": "whsec_abc",
    }
    assert redact(body) == {
        "api_key": MASK,
        "nested": [{"Authorization": MASK, "ok": 1}],
        "webhook_secret": MASK,
    }


@pytest.mark.parametrize(
    "key",
    [
        "access_key",
        "accessKey",
        "private_key",
        "passwd",
        "X-Auth",
        "APIKey",
        "client_secret",
        "Stripe-Signature",
        "webhook-signature",
        "sentry_dsn",
        "refresh_token",
        "Set-Cookie",
        "api_keys",
        "apiKeys",
        "pass",
        "db_pass",
        "subscription_key",
        "Ocp-Apim-Subscription-Key",
        "x-goog-api-key",
        "sig",
        "hmac",
        "jwt",
    ],
)
def test_every_spelling_of_a_secret_key_is_masked(key: str) -> None:
    assert redact({key: PLANTED}) == {key: MASK}


@pytest.mark.parametrize(
    "key", ["tokens_used", "author", "idempotency_key", "keyword", "status", "passed", "pass_rate"]
)
def test_a_key_that_merely_contains_a_secret_word_keeps_its_value(key: str) -> None:
    assert redact({key: "visible"}) == {key: "visible"}


@pytest.mark.parametrize(
    "text",
    [
        f"Authorization: Bearer {PLANTED}",
        f"Token {PLANTED}",
        f"eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ{PLANTED}.c2lnbmF0dXJl",
        f"https://user:{PLANTED}@api.example/v1",
        f"postgresql://refundry:{PLANTED}@db.internal:5432/refundry",
        f"redis://:{PLANTED}@127.0.0.1:6379/0",
        f"https://cdn.example/v.mp4?token={PLANTED}",
        f"https://cdn.example/v.mp4#access_token={PLANTED}",
        f"password={PLANTED}",
        f"{{'api_key': '{PLANTED}'}}",
        f"sk_live_{PLANTED}",
        f"whsec_{PLANTED}",
        f"sk-proj-{PLANTED}",
        f"r8_{PLANTED}",
    ],
)
def test_secrets_are_masked_by_value_wherever_they_stand(text: str) -> None:
    for shown in (redact_text(f"failed: {text} (retry)"), json.dumps(redact({"note": text}))):
        assert PLANTED not in shown
        assert MASK in shown


@pytest.mark.parametrize(
    "text",
    [
        f"Authorization: Key 1a2b3c4d-5e6f-7a8b:{PLANTED}",  # fal's scheme
        f"Authorization: Key {PLANTED}",
        f"Authorization: ApiKey {PLANTED}",
        "Authorization: Bearer s3cr3t",  # shorter than a free-standing Bearer credential
        f"Authorization=Bearer {PLANTED}",
        f"Stripe-Signature: t=1700000000,v1={PLANTED},v0={PLANTED}",
        f"[('x-api-key', '{PLANTED}')]",
        f'[["Authorization", "Key {PLANTED}"]]',
        f'{{\\"api_key\\": \\"{PLANTED}\\"}}',  # JSON inside a JSON string
        f"api_key%3D{PLANTED}",
        f"https://x.blob.example/v.mp4 sig={PLANTED}&se=2030",
        f"Ocp-Apim-Subscription-Key: {PLANTED}",
        f'password: "{PLANTED} with spaces"',
        f"db_pass={PLANTED}",
        f"Key 1a2b3c4d-{PLANTED}:0123456789abcdef",
    ],
)
def test_a_credential_after_a_secret_name_is_masked_however_the_pair_is_written(
    text: str,
) -> None:
    for shown in (redact_text(f"failed: {text} (retry)"), json.dumps(redact({"note": text}))):
        assert PLANTED not in shown and "s3cr3t" not in shown, shown
        assert MASK in shown


@pytest.mark.parametrize(
    "token",
    [
        "ghp_" + "A1b2C3d4" * 5,
        "github_pat_" + "A1b2C3d4" * 5,
        "AIzaSy" + "A1b2C3d4" * 4,
        "xoxb-1234-" + PLANTED,
        "AKIA" + "QAPWAWS1234567890",
        "hf_" + "A1b2C3d4" * 5,
        "sk-ant-api03-" + PLANTED,
    ],
)
def test_a_well_known_token_format_is_masked_wherever_it_stands(token: str) -> None:
    for shown in (redact_text(f"retry with {token}, then"), json.dumps(redact([token]))):
        assert token not in shown and MASK in shown


def test_a_pem_private_key_block_is_masked_whole() -> None:
    body = f"MIIEvQIBADANBgkq{PLANTED}\nhkiG9w0BAQEFAASC"
    for kind in ("", "RSA ", "OPENSSH "):
        text = f"key: -----BEGIN {kind}PRIVATE KEY-----\n{body}\n-----END {kind}PRIVATE KEY----- ok"
        shown = redact_text(text)
        assert PLANTED not in shown and "hkiG9w0" not in shown
        assert shown.endswith(f"-----END {kind}PRIVATE KEY----- ok")
    cut = redact_text(f"-----BEGIN PRIVATE KEY-----\n{body}")  # cut before its END line
    assert PLANTED not in cut


def test_a_header_list_of_name_value_pairs_masks_the_secret_ones() -> None:
    headers = {"headers": [["x-api-key", PLANTED], ("Authorization", "Key a:b"), ["Accept", "*/*"]]}
    assert redact(headers) == {
        "headers": [["x-api-key", MASK], ["Authorization", MASK], ["Accept", "*/*"]]
    }


@pytest.mark.parametrize(
    "filler",
    [
        "a=",
        "a:",
        "'a', '",
        'a\\"',
        "a%3D",
        "Key a",
        "Authorization: Bearer ",
        "-----BEGIN ",
        "ghp_",
    ],
)
def test_redaction_time_grows_linearly_with_adversarial_input(filler: str) -> None:
    def seconds(size: int) -> float:
        text = (filler * (size // len(filler) + 1))[:size]
        runs = []
        for _ in range(2):
            started = time.perf_counter()
            redact_text(text, limit=size)
            runs.append(time.perf_counter() - started)
        return min(runs)

    small, large = seconds(32_768), seconds(262_144)  # eight times longer
    assert large < 32 * small + 0.05, (small, large)  # quadratic would be 64 times slower


def test_a_url_keeps_what_an_engineer_needs_and_loses_its_credentials() -> None:
    assert redact_text("postgresql://u:pw@db.internal:5432/refundry") == (
        f"postgresql://u:{MASK}@db.internal:5432/refundry"
    )
    assert redact({"url": "https://cdn.example/v.mp4?X-Amz-Signature=deadbeef"}) == {
        "url": f"https://cdn.example/v.mp4?{MASK}"
    }


def test_ordinary_prose_and_ids_are_left_alone() -> None:
    text = "kling task 8600000001 failed: the token expired; tokens_used=5 gen=gen-42"
    assert redact_text(text) == text


@pytest.mark.parametrize("levels", [600, 100_000])
def test_a_payload_nested_at_any_depth_is_redacted_without_recursion(levels: int) -> None:
    deep: dict[str, object] = {"api_key": PLANTED}
    for _ in range(levels):
        deep = {"x": [deep]}
    out = json.dumps(redact(deep))  # json.dumps itself would overflow on the input
    assert PLANTED not in out
    assert "[too deep]" in out
    assert out.count("{") <= MAX_DEPTH + 1


def test_a_huge_string_is_cut_to_the_cap_before_any_pattern_runs() -> None:
    for filler in ("http://", "eyJ", "a=", "Bearer "):
        out = redact_text(filler * 200_000)
        assert len(out) < MAX_STRING_CHARS + 64
        assert out.endswith("chars cut]")


def test_an_errors_reason_and_message_are_redacted() -> None:
    exc = ChargeNotFound(generation_id=f"https://x.example/?sig={PLANTED}")
    assert PLANTED not in exc.reason
    assert PLANTED not in str(exc)


def test_log_lines_and_tracebacks_are_redacted_whoever_logs_them() -> None:
    install_redaction()
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    logger = logging.getLogger("some.library")
    logger.addHandler(handler)
    try:
        logger.warning("calling %s with %s", "https://api.example/x", f"Bearer {PLANTED}")
        try:
            raise RuntimeError(f"connect failed: postgresql://u:{PLANTED}@db/x")
        except RuntimeError:
            logger.exception("pool retry")
    finally:
        logger.removeHandler(handler)
    shown = stream.getvalue()
    assert "calling https://api.example/x with Bearer" in shown
    assert "RuntimeError: connect failed" in shown
    assert PLANTED not in shown


def test_a_token_given_as_a_url_user_is_masked_and_a_plain_user_name_kept() -> None:
    token = "ghp_" + "A1b2C3d4" * 5
    assert redact_text(f"https://{token}@github.example/x") == f"https://{MASK}@github.example/x"
    assert (
        redact_text("postgresql://nobody@127.0.0.1:5432/x")
        == "postgresql://nobody@127.0.0.1:5432/x"
    )


@pytest.mark.parametrize(
    "text",
    ["sqlite:///", "sqlite:////var/lib/refundry/ledger.sqlite3", "file:///tmp/x", "https://h/p"],
)
def test_a_url_with_nothing_secret_is_left_exactly_as_written(text: str) -> None:
    assert redact_text(f"supported='{text}'") == f"supported='{text}'"


@pytest.mark.parametrize(
    "text",
    [
        "a Standard Webhooks secret is too short (variable='OPENAI_WEBHOOK_SECRET', entry=1)",
        "holds a control character (variable='STRIPE_WEBHOOK_SECRET', minimum_bytes=24)",
    ],
)
def test_a_message_naming_a_secret_variable_is_kept_whole(text: str) -> None:
    """Kind: a variable's name taken for a secret pair. ``'NAME', other=…`` names the
    variable in an error's fields; only ``('name', 'value')`` is a pair to mask."""
    assert redact_text(text) == text

"""``refundry web`` checks its secrets and keys before it serves anything: a signing secret
it could never verify with (a Standard Webhooks secret that is not base64 or holds fewer
than the 24 bytes the spec requires, a Stripe secret that is not a ``whsec_`` endpoint
secret) and a route that could not apply what it keeps (its provider API key unset) stop it
at start with exit 4 and one line naming the variable, never the secret."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from tests.support.commands import clean_env, refundry
from tests.support.processes import LOOPBACK, free_port
from tests.support.redis_server import RedisServer

GOOD_KLING = "whsec_" + base64.b64encode(b"configuration-test-kling-32-byte").decode()
GOOD_OPENAI = "whsec_" + base64.b64encode(b"configuration-test-openai-32-byt").decode()

UNUSABLE_SECRETS = {
    "not base64": ("KLING_WEBHOOK_SECRET", "whsec_this-is-not-base64!"),
    "3 bytes": ("KLING_WEBHOOK_SECRET", "whsec_QUJD"),
    "23 bytes": ("REPLICATE_WEBHOOK_SECRET", "whsec_" + base64.b64encode(b"x" * 23).decode()),
    "the prefix alone": ("OPENAI_WEBHOOK_SECRET", "whsec_"),
    "second of a rotation": ("KLING_WEBHOOK_SECRET", f"{GOOD_KLING},whsec_QUJDREVG"),
    "a Stripe API key": ("STRIPE_WEBHOOK_SECRET", "sk_test_51NotAWebhookSecret0123"),
}

MISSING_KEYS = {
    "stripe": ("STRIPE_WEBHOOK_SECRET", "whsec_configuration_test_0123456789", "STRIPE_API_KEY"),
    "openai": ("OPENAI_WEBHOOK_SECRET", GOOD_OPENAI, "OPENAI_API_KEY"),
    "suno": ("SUNO_WEBHOOK_SECRET", "kie-configuration-test-key", "SUNO_API_KEY"),
}
"""route → (its secret, a usable value, the API key without which it cannot apply)."""

KEYS = {
    "STRIPE_API_KEY": "sk_test_configuration",
    "OPENAI_API_KEY": "sk-configuration",
    "SUNO_API_KEY": "suno-configuration",
}


def _web(env: dict[str, str], *extra: str) -> tuple[int, str]:
    done = refundry(env, "web", "--host", LOOPBACK, "--port", str(free_port()), *extra, timeout=30)
    return done.returncode, done.stdout + done.stderr


def _env(tmp_path: Path, redis_server: RedisServer, **settings: str) -> dict[str, str]:
    redis_server.start()
    env = clean_env(tmp_path, REDIS_URL=redis_server.url, FAL_JWKS_URL="off")
    for name in [name for name in env if name.endswith(("_WEBHOOK_SECRET", "_API_KEY"))]:
        del env[name]
    return env | settings


@pytest.mark.parametrize("processes", ["1", "2"])
@pytest.mark.parametrize("case", list(UNUSABLE_SECRETS))
def test_an_unusable_signing_secret_stops_web_at_start_naming_its_variable(
    tmp_path: Path, redis_server: RedisServer, case: str, processes: str
) -> None:
    variable, secret = UNUSABLE_SECRETS[case]
    code, output = _web(_env(tmp_path, redis_server, **KEYS, **{variable: secret}), "-p", processes)
    assert code == 4, output
    assert output.startswith("refundry: ConfigurationError") and output.count("\n") == 1, output
    assert variable in output
    shown = [part.removeprefix("whsec_") for part in secret.split(",")]
    assert not any(part and part in output for part in shown)


@pytest.mark.parametrize("route", list(MISSING_KEYS))
def test_a_route_that_cannot_apply_what_it_keeps_stops_web_at_start(
    tmp_path: Path, redis_server: RedisServer, route: str
) -> None:
    variable, secret, key = MISSING_KEYS[route]
    keys = {name: value for name, value in KEYS.items() if name != key}
    code, output = _web(_env(tmp_path, redis_server, **keys, **{variable: secret}))
    assert code == 4, output
    assert output.startswith("refundry: ConfigurationError") and output.count("\n") == 1, output
    assert key in output and secret not in output

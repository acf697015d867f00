"""``DATABASE_URL`` and ``REDIS_URL`` are parsed before any driver sees them: a URL that
cannot be used is refused by name (exit 4 at the command line), and no password, however
it is spelled, is ever repeated."""

from __future__ import annotations

from urllib.parse import quote

import pytest

from ledger import database_location
from ledger.errors import ConfigurationError
from workers.broker import redis_location
from workers.settings import Settings, parse_redis_url

PASSWORDS = [
    "QAPWslash/xyz+abc=",
    "QAPWhash#frag",
    "QAPWq?x",
    "QAPWa%b@c d:e",
    "QAPW%zz",
    "QAPW[1]",
]


@pytest.mark.parametrize("password", PASSWORDS)
@pytest.mark.parametrize(
    ("variable", "template"),
    [
        ("DATABASE_URL", "postgresql://app:{}@127.0.0.1:5432/ledger"),
        ("REDIS_URL", "redis://:{}@127.0.0.1:6379/0"),
        ("REDIS_URL", "rediss://worker:{}@cache.internal:6380"),
    ],
)
def test_a_server_url_whose_password_is_not_percent_encoded_is_refused_without_it(
    variable: str, template: str, password: str
) -> None:
    with pytest.raises(ConfigurationError) as caught:
        Settings.from_env({variable: template.format(password)})
    assert caught.value.fields["variable"] == variable
    assert "percent-encode" in str(caught.value)
    shown = f"{caught.value} {caught.value.reason}"
    assert "QAPW" not in shown


@pytest.mark.parametrize("password", PASSWORDS)
def test_a_percent_encoded_password_is_used_as_written_and_never_shown(password: str) -> None:
    encoded = quote(password, safe="")
    db = f"postgresql://app:{encoded}@db.internal:5432/ledger?sslmode=require"
    redis = f"redis://:{encoded}@127.0.0.1:6379/0"
    settings = Settings.from_env({"DATABASE_URL": db, "REDIS_URL": redis})
    assert (settings.database_url, settings.redis_url) == (db, redis)
    assert parse_redis_url(redis).password == password
    assert database_location(db) == "postgresql://app@db.internal:5432/ledger (schema refundry)"
    assert redis_location(redis) == "redis://127.0.0.1:6379/0"


@pytest.mark.parametrize(
    ("variable", "value", "problem"),
    [
        ("DATABASE_URL", "host=127.0.0.1 port=1 user=app password=QAPWkv dbname=x", "key/value"),
        ("DATABASE_URL", "postgresql://app:QAPWport@127.0.0.1:notaport/x", "host or port"),
        ("DATABASE_URL", "postgresql://app:QAPWport@127.0.0.1:70000/x", "port is not from 1"),
        ("DATABASE_URL", "mysql://app:QAPWmysql@127.0.0.1/x", "unsupported"),
        ("DATABASE_URL", "postgresql+psycopg://app:QAPWsqla@127.0.0.1/x", "unsupported"),
        ("REDIS_URL", "localhost:6379", "not a URL"),
        ("REDIS_URL", "http://:QAPWhttp@127.0.0.1:1", "unsupported"),
        ("REDIS_URL", "redis://:QAPWdb@127.0.0.1:6379/zero", "database number"),
        ("REDIS_URL", "redis://:QAPWport@127.0.0.1:port/0", "host or port"),
    ],
)
def test_a_server_url_that_cannot_be_used_is_refused_by_name(
    variable: str, value: str, problem: str
) -> None:
    with pytest.raises(ConfigurationError) as caught:
        Settings.from_env({variable: value})
    assert caught.value.fields["variable"] == variable
    assert problem in str(caught.value)
    assert "QAPW" not in f"{caught.value} {caught.value.reason}"


@pytest.mark.parametrize("value", ["", " ", "\t", "postgres-prod.internal", "ledger.sqlite3"])
def test_a_blank_or_scheme_less_database_url_is_refused_not_taken_for_a_sqlite_file(
    value: str,
) -> None:
    with pytest.raises(ConfigurationError) as caught:
        Settings.from_env({"DATABASE_URL": value, "REFUNDRY_HOME": "/nonexistent-home"})
    assert caught.value.fields["variable"] == "DATABASE_URL"
    assert "sqlite:///" in str(caught.value.fields["supported"])


def test_an_unset_database_url_is_the_sqlite_ledger_in_the_home_and_sqlite_urls_work() -> None:
    unset = Settings.from_env({"REFUNDRY_HOME": "/nonexistent-home"})
    assert unset.database_url == "sqlite:////nonexistent-home/ledger.sqlite3"
    written = Settings.from_env({"DATABASE_URL": "sqlite:////srv/refundry/ledger.sqlite3"})
    assert written.database_url == "sqlite:////srv/refundry/ledger.sqlite3"

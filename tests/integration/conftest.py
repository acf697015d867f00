"""The ledger under test, on each backend: SQLite in a temp dir, PostgreSQL on the session's
real server (a fresh database per test)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from ledger import Ledger, open_ledger
from providers.stripe_api import StripeAPI
from tests.support.commands import RefundryProcess, WorkerProcesses
from tests.support.fake_billing import FakeBilling
from tests.support.fake_status_apis import suno_api
from tests.support.fake_stripe import FakeStripe
from tests.support.ingress import FalSigner, IngressServer, jwks_server, start
from tests.support.ingress_routes import (
    Signed,
    fal_delivery,
    kling_delivery,
    openai_delivery,
    routes_env,
    stripe_delivery,
    suno_delivery,
)
from tests.support.redis_server import RedisServer
from tests.support.scripted_http import ScriptedHTTPServer
from tests.support.settings import configure

BACKENDS = ["sqlite", "postgresql"]


@pytest.fixture(params=BACKENDS)
def ledger_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'ledger.sqlite3'}"
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture
def ledger(ledger_url: str) -> Iterator[Ledger]:
    book = open_ledger(ledger_url, policy_version="test-1")
    yield book
    book.db.close()


@pytest.fixture
def fresh_ledgers(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[], Ledger]:
    """For the state machines (parametrized ``indirect``, ``sqlite`` or ``postgresql``): a
    function that opens a new, empty ledger for each example (a new file, or a new schema)."""
    count = iter(range(10**9))
    if request.param == "sqlite":
        return lambda: open_ledger(
            f"sqlite:///{tmp_path / f'sm{next(count)}.sqlite3'}", policy_version="sm"
        )
    url: str = request.getfixturevalue("postgres_url")
    return lambda: open_ledger(url, policy_version="sm", pg_schema=f"sm{next(count)}")


BROKERS = ["redis", "rabbitmq"]
"""A suite that must hold on both brokers: ``@pytest.mark.parametrize("broker", BROKERS,
indirect=True)`` (every other test runs on Redis)."""


@pytest.fixture
def broker(request: pytest.FixtureRequest) -> str:
    """``redis`` unless parametrized (``BROKERS``)."""
    return str(getattr(request, "param", "redis"))


@pytest.fixture
def refundry_env(
    redis_url: str,
    ledger_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    request: pytest.FixtureRequest,
    broker: str,
) -> Iterator[dict[str, str]]:
    """Point this process (``workers.client``) and the workers it starts at the test's
    broker (Redis, or RabbitMQ for ``broker="rabbitmq"``: ``BROKER_URL`` and no
    ``REDIS_URL``) and ledger, with a retry budget short enough to watch it run out."""
    from workers import runtime

    env = {
        "REDIS_URL": redis_url,
        "DATABASE_URL": ledger_url,
        "REFUNDRY_HOME": str(tmp_path / "home"),
        "REFUNDRY_MAX_RETRIES": "2",
        "REFUNDRY_MIN_BACKOFF_MS": "50",
        "REFUNDRY_MAX_BACKOFF_MS": "200",
    }
    if broker == "rabbitmq":
        del env["REDIS_URL"]
        env["BROKER_URL"] = request.getfixturevalue("amqp_url")
        monkeypatch.delenv("REDIS_URL", raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    runtime.reset()
    yield env
    runtime.reset()


@pytest.fixture
def workers(refundry_env: dict[str, str], tmp_path: Path) -> Iterator[WorkerProcesses]:
    pool = WorkerProcesses(refundry_env, tmp_path / "workers.log")
    yield pool
    pool.stop()


@pytest.fixture
def scheduler(refundry_env: dict[str, str], tmp_path: Path) -> Iterator[RefundryProcess]:
    proc = RefundryProcess(refundry_env, tmp_path / "scheduler.log", "scheduler")
    yield proc
    proc.stop()


@pytest.fixture
def fake() -> Iterator[FakeStripe]:
    """A real local HTTP server answering like the Stripe API (stateful)."""
    server = FakeStripe().start()
    yield server
    server.close()


@pytest.fixture
def billing() -> Iterator[FakeBilling]:
    """The fake Stripe with subscriptions and their invoices."""
    server = FakeBilling().start()
    yield server
    server.close()


def _client_of(fake: FakeStripe) -> Iterator[StripeAPI]:
    """Refundry's Stripe client pointed at ``fake``; no hidden retries."""
    with StripeAPI(
        "sk_test_refundry", base=fake.url, read_timeout_s=2.0, max_network_retries=0
    ) as stripe_api:
        yield stripe_api


@pytest.fixture
def api(fake: FakeStripe) -> Iterator[StripeAPI]:
    """Refundry's Stripe client pointed at the fake."""
    yield from _client_of(fake)


@pytest.fixture
def billing_api(billing: FakeBilling) -> Iterator[StripeAPI]:
    """Refundry's Stripe client pointed at the fake with subscriptions."""
    yield from _client_of(billing)


@pytest.fixture
def stripe_settings(
    fake: FakeStripe, refundry_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> Callable[..., dict[str, str]]:
    """Point this process and the workers it starts at the fake Stripe, selling ``packs``
    (price id → credits), with ``more`` settings; returns the workers' environment."""

    def point(packs: dict[str, int], **more: str) -> dict[str, str]:
        return configure(
            monkeypatch,
            refundry_env,
            STRIPE_API_KEY="sk_test_refundry_workers",
            STRIPE_API_BASE=fake.url,
            REFUNDRY_PACKS=json.dumps(packs),
            **more,
        )

    return point


# The webhook ingress with every route on (tests/support/ingress_routes.py), one per module.


@pytest.fixture(scope="module")
def fal_key() -> FalSigner:
    return FalSigner("fal-key-1")


@pytest.fixture(scope="module")
def jwks(fal_key: FalSigner) -> Iterator[ScriptedHTTPServer]:
    with jwks_server(fal_key) as server:
        yield server


@pytest.fixture(scope="module")
def suno() -> Iterator[ScriptedHTTPServer]:
    with suno_api() as server:
        yield server


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory,
    redis_server: RedisServer,
    jwks: ScriptedHTTPServer,
    suno: ScriptedHTTPServer,
) -> Iterator[IngressServer]:
    folder = tmp_path_factory.mktemp("ingress")
    env = routes_env(folder, redis_server, jwks, suno)
    web = start(env, folder)
    web.database_url = env["DATABASE_URL"]  # type: ignore[attr-defined]
    yield web
    web.close()


@pytest.fixture
def signer(fal_key: FalSigner, suno: ScriptedHTTPServer) -> Callable[..., Signed]:
    def sign(route: str, **how: object) -> Signed:
        makers: dict[str, Callable[..., Signed]] = {
            "stripe": stripe_delivery,
            "openai": openai_delivery,
            "kling": kling_delivery,
            "fal": lambda **kw: fal_delivery(fal_key, **kw),
            "suno": lambda **kw: suno_delivery(suno, **kw),
        }
        return makers[route](**how)

    return sign

"""``refundry bench`` with ``BROKER_URL=amqp://…`` measures on RabbitMQ: its yardsticks and
Refundry's workers use the session's RabbitMQ node, nothing starts a Redis, and the figures
name the RabbitMQ server. Nothing here is timed."""

from __future__ import annotations

import json
from pathlib import Path

from tests.support.commands import assert_check_ok, clean_env, refundry


def test_bench_and_storm_report_figures_on_rabbitmq(tmp_path: Path, amqp_url: str) -> None:
    env = clean_env(tmp_path, BROKER_URL=amqp_url)
    for args in (["--events", "100", "--rate", "100"], ["--storm", "200"]):
        done = refundry(env, "bench", *args, "--json", "-p", "1", "-t", "4", timeout=600)
        assert done.returncode == 0, done.stderr[-4000:]
        figures = json.loads(done.stdout.strip().splitlines()[-1])
        assert figures["ledger_check"] == "ok"
        assert figures["machine"]["rabbitmq_server"].count(".") >= 1
        assert "redis_server" not in figures["machine"]
        rate = figures.get("refundry_per_s", figures.get("storm_per_s"))
        assert isinstance(rate, float) and rate > 0
    assert not (Path(env["REFUNDRY_HOME"]) / "redis").exists()  # no embedded Redis started
    assert_check_ok(env)

"""Big authenticated bodies are parsed off the event loop (bodies over 64 KiB go to a worker
thread): ``/healthz`` keeps answering while several near-limit bodies of many members are
parsed. How fast it answers is a figure for a benchmark, not a bound asserted here."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tests.support.api import KEY_OLD
from tests.support.ingress import base_env, start
from tests.support.redis_server import RedisServer

AUTH = {"authorization": f"Bearer {KEY_OLD}", "content-type": "application/json"}
LIMIT = 1_048_576


def test_health_checks_are_answered_while_big_bodies_are_parsed(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    env = base_env(tmp_path, redis_server, max_body_bytes=LIMIT) | {"REFUNDRY_API_KEYS": KEY_OLD}
    web = start(env, tmp_path)
    members = {f"k{i:05d}": i for i in range(58_000)}
    big = json.dumps({"provider": "fal", "payload": members}).encode()
    assert len(big) < LIMIT
    try:
        with ThreadPoolExecutor(3) as pool:
            posts = [
                pool.submit(web.http.post, "/v1/results", content=big, headers=AUTH)
                for _ in range(3)
            ]
            health = []
            while not all(p.done() for p in posts):
                health.append(web.http.get("/healthz").status_code)
            statuses = {p.result().status_code for p in posts}
    finally:
        web.close()
    assert statuses <= {202, 400, 422}, statuses  # answered, never a 5xx
    assert health and set(health) == {200}, health  # answered while the bodies were parsed

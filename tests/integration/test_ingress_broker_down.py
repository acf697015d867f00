"""With the broker down, ``refundry web`` still keeps every verified delivery and answers
200 (the inbox sweep enqueues it later), and says so in one warning line per delivery,
never a traceback: an outage at webhook rates must not flood the log."""

from __future__ import annotations

import uuid
from pathlib import Path

from tests.support.ingress import base_env, body, inbox_rows, standard_headers, start
from tests.support.ingress_routes import KLING_NEW
from tests.support.processes import free_port
from tests.support.redis_server import RedisServer


def test_a_failed_enqueue_is_one_warning_line_per_delivery_and_no_traceback(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    env = base_env(tmp_path, redis_server) | {
        "REDIS_URL": f"redis://127.0.0.1:{free_port()}/0",  # nothing listens there
        "KLING_WEBHOOK_SECRET": KLING_NEW,
    }
    web = start(env, tmp_path)
    try:
        for _ in range(3):
            text = body({"task_id": f"kt-{uuid.uuid4().hex[:8]}", "task_status": "failed"})
            headers = standard_headers(KLING_NEW, text, webhook_id=f"wh-{uuid.uuid4()}")
            assert web.post("kling", text, headers).status_code == 200
        assert len(inbox_rows(env["DATABASE_URL"])) == 3
    finally:
        web.close()
    log = web.log.read_text()
    failed = [line for line in log.splitlines() if "enqueue of" in line and "failed" in line]
    assert len(failed) == 3, log[-3000:]
    assert all("WARNING" in line and "inbox sweep" in line for line in failed), failed
    assert "Traceback" not in log, log[-3000:]

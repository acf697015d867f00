"""The pipeline client runs inside a platform's own process: it never sets Refundry's Sentry
up there, even with ``SENTRY_DSN`` set (the platform's errors are not Refundry's to report);
the worker, scheduler and web processes do (tests/integration/test_sentry.py)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.support.fake_sentry import FakeSentry

DRIVER = """
import sentry_sdk
from workers import client
from workers.demo_payloads import demo_payload

client.report_result(provider="kling", payload=demo_payload("kling", "job-1", "failed"))
print("sentry active:", sentry_sdk.get_client().is_active(), flush=True)
raise RuntimeError("the platform's own bug")
"""


def test_client_never_initialises_sentry_in_the_pipelines_process(
    refundry_env: dict[str, str], tmp_path: Path
) -> None:
    with FakeSentry() as sentry:
        done = subprocess.run(
            [sys.executable, "-c", DRIVER],
            env={**refundry_env, "SENTRY_DSN": sentry.dsn, "PATH": "/usr/bin:/bin"},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            cwd=Path(__file__).resolve().parents[2],
        )
        received = sentry.items()
    assert done.returncode == 1, done.stderr
    assert "the platform's own bug" in done.stderr  # it did run to its own error
    assert "sentry active: False" in done.stdout
    assert received == []

"""What the ``refundry`` command prints never holds a secret in clear: a classified reason,
and a ``DATABASE_URL`` or ``REDIS_URL`` password however it is spelled."""

from __future__ import annotations

import json
from pathlib import Path

from ledger.redaction import MASK
from tests.support.commands import clean_env, refundry

PLANTED = "s3cr3tPlantedValue0042"


def test_classify_prints_the_reason_redacted(tmp_path: Path) -> None:
    file = tmp_path / "p.json"
    message = f"bad key sk-proj-{PLANTED}, sent Authorization: Bearer {PLANTED[:6]}"
    file.write_text(
        json.dumps({"task_id": "k1", "task_status": "failed", "task_status_msg": message})
    )
    done = refundry(clean_env(tmp_path), "classify", "--provider", "kling", str(file))
    assert done.returncode == 0, done.stderr
    printed = json.loads(done.stdout)
    assert printed["outcome"] == "failed" and MASK in printed["reason"]
    assert PLANTED[:6] not in done.stdout

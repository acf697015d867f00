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


def test_a_server_url_password_is_never_printed_and_an_ambiguous_url_exits_4(
    tmp_path: Path,
) -> None:
    """Passwords with ``/`` or ``#`` left unencoded: every command says which variable to fix
    in one line (exit 4) and ``--help`` still runs, none of them printing the password; a
    libpq key/value string creates no SQLite file named after it."""
    cases = {
        "DATABASE_URL": f"postgresql://app:{PLANTED}/x+y=@127.0.0.1:1/ledger",
        "REDIS_URL": f"redis://:{PLANTED}#x@127.0.0.1:1/0",
    }
    for variable, url in cases.items():
        env = clean_env(tmp_path, **{variable: url})
        for command in (["status"], ["worker", "-p", "1"], ["ledger", "check"]):
            done = refundry(env, *command)
            assert (done.returncode, done.stdout) == (4, ""), (command, done.stderr)
            [line] = done.stderr.splitlines()
            assert line.startswith("refundry: ConfigurationError: ") and variable in line
            assert PLANTED[:12] not in line
        help_text = refundry(env, "--help")
        assert help_text.returncode == 0 and PLANTED[:12] not in help_text.stdout
    key_value = f"host=127.0.0.1 port=1 user=app password={PLANTED} dbname=ledger"
    env = clean_env(tmp_path, DATABASE_URL=key_value)
    done = refundry(env, "ledger", "migrate", cwd=tmp_path)
    assert done.returncode == 4 and "key/value" in done.stderr and PLANTED not in done.stderr
    assert not any(PLANTED in p.name for p in tmp_path.iterdir())

"""The container image runs every Procfile role. No Docker engine is needed: the Dockerfile
is read with Docker's own parser (the ``dockerfile`` package wraps BuildKit's), and each
role's command line is run through the installed ``refundry`` exactly as the image's
entrypoint would receive it."""

from __future__ import annotations

import fnmatch
import shlex
import subprocess
import tomllib
from pathlib import Path

import dockerfile
import pytest

from tests.support.commands import REFUNDRY

ROOT = Path(__file__).resolve().parents[2]
COMMANDS = dockerfile.parse_file(str(ROOT / "Dockerfile"))


def _only(cmd: str) -> dockerfile.Command:
    [found] = [c for c in COMMANDS if c.cmd.upper() == cmd]
    return found


def _roles() -> dict[str, list[str]]:
    roles = {}
    for line in (ROOT / "Procfile").read_text().splitlines():
        if line.strip():
            name, _, command = line.partition(":")
            roles[name.strip()] = shlex.split(command)
    return roles


def test_the_entrypoint_is_the_refundry_command_in_exec_form() -> None:
    entrypoint = _only("ENTRYPOINT")
    assert entrypoint.json and entrypoint.value == ("refundry",)
    assert _only("CMD").json  # exec form: refundry is PID 1 and gets SIGTERM itself


def test_the_default_command_is_the_web_role() -> None:
    assert ["refundry", *_only("CMD").value] == _roles()["web"]


@pytest.mark.parametrize("role", sorted(_roles()))
def test_each_procfile_role_is_a_command_the_entrypoint_runs(role: str) -> None:
    program, *args = _roles()[role]
    assert program == "refundry"  # the entrypoint: `docker run IMAGE <args>`
    done = subprocess.run(
        [str(REFUNDRY), *args, "--help"], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr  # click refuses an unknown role or option (2)
    assert done.stdout.startswith(f"Usage: refundry {args[0]}")


def test_every_package_is_copied_and_nothing_copied_is_ignored() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    packages = {p.rstrip("*") for p in project["tool"]["setuptools"]["packages"]["find"]["include"]}
    copied = {
        source.rstrip("/") for c in COMMANDS if c.cmd.upper() == "COPY" for source in c.value[:-1]
    }
    assert packages <= copied
    assert project["project"]["readme"] in copied and "pyproject.toml" in copied
    ignored = [line for line in (ROOT / ".dockerignore").read_text().splitlines() if line.strip()]
    for source in copied:
        assert (ROOT / source).exists(), source
        assert not any(fnmatch.fnmatch(source, pattern) for pattern in ignored), source


def test_the_image_never_runs_as_root() -> None:
    user = _only("USER").value[0]
    assert user.split(":")[0] not in ("root", "0")
    assert [c.cmd.upper() for c in COMMANDS].index("USER") > max(
        i for i, c in enumerate(COMMANDS) if c.cmd.upper() == "RUN"
    )

"""Fuzzing the policy loader and every command that reads a file: a policy file, valid TOML
of any shape or the shipped policy with bytes changed, is loaded or refused with a
``PolicyError`` naming the key and line; ``refundry classify FILE`` and ``refundry policy
check FILE`` answer any bytes with their result or one ``refundry: <Error>: …`` line and a
usage or setting exit code, never a traceback."""

from __future__ import annotations

import tempfile
from pathlib import Path

from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from handlers.policy_file import parse_policy, shipped_policy
from ledger.errors import PolicyError, RefundryError
from providers.registry import PROVIDER_NAMES
from tests.fuzz.conftest import count
from tests.fuzz.strategies import NASTY, raw_bodies
from workers.cli import main

SHIPPED = (Path(__file__).parents[2] / "handlers" / "policy_default.toml").read_text()
BASE = shipped_policy().versions[-1].rules

_VALUES = st.one_of(
    st.integers(-(10**20), 10**20),
    st.booleans(),
    st.text(max_size=12),
    NASTY,
    st.lists(st.sampled_from(["failed", "succeeded", "cancelled", "x", ""]), max_size=4),
    st.just("1970-01-01T00:00:00Z"),
    st.just("2026-11-23T00:00:00Z"),
    st.just("[1, 2]"),
    st.just("[30, 10]"),
    st.just('{ "kling:video" = [1, 2] }'),
)
_KEYS = st.sampled_from(
    [
        "name",
        "effective",
        "refund_outcomes",
        "refund_sla_ms",
        "landing_window_s",
        "unlanded_pack_action",
        "duplicate_window_s",
        "fraud_action",
        "outcomes",
        "deadlines",
        "packs",
        "inherits",
        "",
        "x",
    ]
)


def _toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, list):
        return "[" + ", ".join(f'"{v}"' for v in value) + "]"
    text = str(value)
    if text[:1] in "[{" or text[:4].isdigit():
        return text  # an array, inline table or date as written
    return '"' + text.encode("unicode_escape").decode("ascii").replace('"', '\\"') + '"'


@st.composite
def policy_texts(draw: st.DrawFn) -> str:
    """A file of ``[[version]]`` tables with keys and values drawn from the real ones, or
    the shipped file with a span replaced, deleted or duplicated."""
    if draw(st.booleans()):
        lines: list[str] = []
        for _ in range(draw(st.integers(0, 3))):
            lines.append("[[version]]")
            for key, value in draw(st.dictionaries(_KEYS, _VALUES, max_size=6)).items():
                lines.append(f"{key} = {_toml_value(value)}" if key else f'"" = {value!r}')
        return "\n".join(lines) + "\n"
    start = draw(st.integers(0, len(SHIPPED)))
    end = draw(st.integers(start, min(len(SHIPPED), start + 40)))
    patch = draw(st.text(max_size=20) | NASTY | st.just(SHIPPED[start:end] * 2))
    return SHIPPED[:start] + patch + SHIPPED[end:]


@given(policy_texts())
def test_a_policy_file_is_loaded_or_refused_with_a_policy_error(text: str) -> None:
    count("policy.parse")
    try:
        book = parse_policy(text, source="fuzz.toml", base=BASE)
    except PolicyError as refused:
        assert refused.fields["file"] == "fuzz.toml"
        return
    assert book.versions


def _run(args: list[str], data: bytes) -> tuple[int, str, str]:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "input"
        path.write_bytes(data)
        done = CliRunner().invoke(main, [*args, str(path)], catch_exceptions=True)
    if done.exception is not None and not isinstance(done.exception, SystemExit):
        raise done.exception  # a crash: shown with its traceback
    return done.exit_code, done.stdout, done.stderr


@given(st.sampled_from(PROVIDER_NAMES), raw_bodies())
def test_refundry_classify_answers_any_file_or_refuses_it_in_one_line(
    provider: str, data: bytes
) -> None:
    count("cli.classify")
    code, out, err = _run(["classify", "--provider", provider], data)
    assert code in (0, 2), err
    if code:
        (line,) = err.strip().splitlines()
        assert line.startswith("refundry: ")
    else:
        assert '"outcome"' in out


@given(policy_texts().map(lambda t: t.encode("utf-8", "surrogatepass")) | raw_bodies())
def test_refundry_policy_check_answers_any_file_or_refuses_it_in_one_line(data: bytes) -> None:
    count("cli.policy_check")
    code, out, err = _run(["policy", "check"], data)
    assert code in (0, 4), err
    if code:
        (line,) = err.strip().splitlines()
        assert line.startswith("refundry: PolicyError") or line.startswith("refundry: Config")
    else:
        assert out.startswith("ok: ")


def test_the_fuzzed_errors_are_refundrys_own() -> None:
    assert issubclass(PolicyError, RefundryError)

"""Reading a refund policy file (TOML) into a :class:`~handlers.policy_rules.PolicyBook`.

The file's shape (README, "Refund policy")::

    [[version]]
    name = "2026-01"                      # unique; written on every ledger entry
    effective = 2026-01-01T00:00:00Z      # RFC 3339 with an offset; versions ordered by it
    refund_outcomes = ["failed", "empty_success", "moderated", "cancelled"]
    refund_sla_ms = 3600000
    landing_window_s = 3600
    unlanded_pack_action = "complete"     # or "refund"
    duplicate_window_s = 600
    fraud_action = "refund_and_revoke"    # or "alert"
    charge_mode = "debit"                 # or "hold"

    [version.outcomes]                    # per operation or provider:operation
    "kling:video" = ["failed", "empty_success"]

    [version.deadlines]                   # [poll_after_s, hard_s], as REFUNDRY_DEADLINES
    video = [600, 2700]

    [version.packs]                       # price id → credits, as REFUNDRY_PACKS
    price_1QxyzAbc = 500

    [version.manual_refunds]              # a refund a customer asks for (eligibility)
    window_days = 7                       # asked within 7 days of payment …
    max_used_share = 0.20                 # … having used at most 20 % of the pack

    [version.credit_kinds]                # kind → expiry (handlers.credit_kinds)
    subscription = { expires = "after_cancellation", days = 60 }

A version that leaves a rule out inherits it from the version before it (the first from the
shipped default, ``handlers/policy_default.toml``); a table inherits key by key. Anything
else is refused with :class:`~ledger.errors.PolicyError` naming the key and its line: TOML
syntax, unknown keys, duplicate names, two versions with one effective time, bad values.
"""

from __future__ import annotations

import json
import os
import re
import stat
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import cache
from importlib.resources import files
from pathlib import Path
from typing import Any, Final, NoReturn

from handlers.credit_kinds import CHARGE_MODES, CreditKind, KindProblem, read_kind
from handlers.deadlines import DeadlinePolicy
from handlers.packs import FRAUD_ACTIONS, UNLANDED_ACTIONS, PackCatalog
from handlers.policy_rules import REFUNDABLE, PolicyBook, PolicyVersion, Rules
from ledger.errors import ConfigurationError, PolicyError
from ledger.outcomes import Outcome
from providers.base import OPERATIONS
from providers.registry import PROVIDER_NAMES

__all__ = [
    "MAX_POLICY_BYTES",
    "SHIPPED",
    "key_line",
    "parse_policy",
    "read_policy",
    "shipped_policy",
]

SHIPPED: Final = "shipped default"
MAX_POLICY_BYTES: Final = 1_048_576
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:+-]{0,63}")
_TABLES: Final = ("outcomes", "deadlines", "packs", "manual_refunds", "credit_kinds")
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(slots=True)
class _Lines:
    """Where each key of the file is: tomllib returns values without positions, so the text
    is scanned once for table headers and ``key =`` lines (enough for the keys this shape
    allows; an inline table's keys fall back to the line of the key that holds it)."""

    found: dict[tuple[int | None, str | None, str | None], int] = field(default_factory=dict)

    @classmethod
    def scan(cls, text: str) -> _Lines:
        lines = cls()
        version: int | None = None
        table: str | None = None
        in_string = False
        for number, line in enumerate(text.splitlines(), start=1):
            if line.count('"""') % 2 or line.count("'''") % 2:
                in_string = not in_string
                continue
            if in_string:
                continue
            header = re.match(r"\s*(\[\[?)\s*([^\]#]+?)\s*\]", line)
            if header:
                path = header.group(2).replace(" ", "")
                if header.group(1) == "[[" and path == "version":
                    version, table = (0 if version is None else version + 1), None
                elif path.startswith("version."):
                    table = _unquote(path.removeprefix("version."))
                else:
                    version, table = None, path
                lines.found.setdefault((version, table, None), number)
                continue
            key = re.match(r"""\s*("[^"]*"|'[^']*'|[A-Za-z0-9_-]+)\s*[=.]""", line)
            if key:
                lines.found.setdefault((version, table, _unquote(key.group(1))), number)
        return lines

    def line(self, version: int | None, table: str | None = None, key: str | None = None) -> int:
        probes = [(version, table, key)]
        if table is None:
            probes.append((version, key, None))  # the key is a table: its header's line
        probes += [(version, table, None), (version, None, table)]
        for probe in probes:
            if probe in self.found:
                return self.found[probe]
        return self.found.get((version, None, None), 1)


def _unquote(key: str) -> str:
    return key[1:-1] if len(key) >= 2 and key[0] == key[-1] and key[0] in "\"'" else key


@dataclass(frozen=True, slots=True)
class _Where:
    """What a check is about: the file, one version (index in the file) and a table."""

    source: str
    lines: _Lines
    version: int | None = None
    table: str | None = None

    def refuse(self, what: str, key: str | None = None, *, inner: str | None = None) -> NoReturn:
        """Raise ``PolicyError`` at ``key`` (``inner``: a key inside its inline table,
        named in the message; the line is the key's)."""
        path = [] if self.version is None else [f"version[{self.version + 1}]"]
        path += [p for p in (self.table, key, inner) if p is not None]
        line = self.lines.line(self.version, self.table, key)
        if inner is not None and self.table is not None:  # written as [version.table.key]
            sub = f"{self.table}.{key}"
            line = self.lines.found.get(
                (self.version, sub, inner), self.lines.found.get((self.version, sub, None), line)
            )
        raise PolicyError(
            what,
            file=self.source,
            line=line,
            key=".".join(path) or "version",
        )

    def inside(self, table: str) -> _Where:
        return _Where(self.source, self.lines, self.version, table)


def _whole(low: int, high: int) -> Callable[[_Where, str, Any], int]:
    def check(where: _Where, key: str, value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            where.refuse(f"must be a whole number from {low} to {high}", key)
        return value

    return check


def _one_of(*allowed: str) -> Callable[[_Where, str, Any], str]:
    def check(where: _Where, key: str, value: Any) -> str:
        if value not in allowed:
            where.refuse(f"must be one of: {', '.join(allowed)}", key)
        return str(value)

    return check


def _outcomes(where: _Where, key: str, value: Any) -> frozenset[Outcome]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        where.refuse("must be a list of outcome names", key)
    allowed = sorted(o.value for o in REFUNDABLE)
    for name in value:
        if name not in allowed:
            where.refuse(f"{name!r} is not a refundable outcome ({', '.join(allowed)})", key)
    if len(set(value)) != len(value):
        where.refuse("names an outcome twice", key)
    return frozenset(Outcome(v) for v in value)


_SCALARS: Final[dict[str, Callable[[_Where, str, Any], Any]]] = {
    "refund_outcomes": _outcomes,
    "refund_sla_ms": _whole(1, 604_800_000),
    "landing_window_s": _whole(0, 2_592_000),
    "unlanded_pack_action": _one_of(*UNLANDED_ACTIONS),
    "duplicate_window_s": _whole(0, 2_592_000),
    "fraud_action": _one_of(*FRAUD_ACTIONS),
    "charge_mode": _one_of(*CHARGE_MODES),
}
"""Each rule that is one value, and how it is checked (the ranges are those of the
environment variables that override them, ``workers.settings``)."""


def _share(where: _Where, key: str, value: Any) -> Decimal:
    """A share from 0 to 1, kept as the decimal the file wrote (0.2 is exactly 0.2)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        where.refuse("must be a number from 0 to 1 (0.2 is 20 %)", key)
    return Decimal(str(value))


_MANUAL_REFUNDS: Final[dict[str, Callable[[_Where, str, Any], Any]]] = {
    "window_days": _whole(0, 3650),
    "max_used_share": _share,
}
"""The keys of ``[version.manual_refunds]`` (``handlers.manual_refunds``) and their checks."""


def _manual_refunds(where: _Where, table: Mapping[str, Any]) -> dict[str, Any]:
    for key in table:
        if key not in _MANUAL_REFUNDS:
            where.refuse(f"unknown key ({', '.join(_MANUAL_REFUNDS)})", key)
    return {key: _MANUAL_REFUNDS[key](where, key, value) for key, value in table.items()}


_KEYS: Final = frozenset({"name", "effective", *_SCALARS, *_TABLES})


def _known_keys(where: _Where, table: Mapping[str, Any]) -> None:
    """Each key of a per-operation table (``outcomes``, ``deadlines``) is an operation or a
    ``provider:operation`` Refundry knows: a typo is refused, never silently ignored."""
    for key in table:
        provider, _, operation = key.rpartition(":")
        if operation not in OPERATIONS or (provider and provider not in PROVIDER_NAMES):
            where.refuse("not an operation or provider:operation Refundry knows", key)


def _outcome_table(where: _Where, table: Mapping[str, Any]) -> dict[str, frozenset[Outcome]]:
    _known_keys(where, table)
    return {key: _outcomes(where, key, value) for key, value in table.items()}


def _via_setting(
    where: _Where, table: Mapping[str, Any], parse: Callable[[str], object]
) -> dict[str, Any]:
    """A table also accepted as a JSON setting, checked by that setting's own parser (one
    place per rule); its ``ConfigurationError`` becomes a ``PolicyError`` at the key."""
    try:
        parse(json.dumps(dict(table), default=str))
    except ConfigurationError as exc:
        what = str(exc).split(" (", 1)[0]
        where.refuse(what, exc.fields.get("key"))
    return dict(table)


def _rules(where: _Where, raw: Mapping[str, Any], base: Rules | None) -> Rules:
    values: dict[str, Any] = {}
    for key, check in _SCALARS.items():
        if key in raw:
            values[key] = check(where, key, raw[key])
        elif base is None:
            where.refuse("the first version of the shipped default states every rule", key)
        else:
            values[key] = getattr(base, key)
    tables: dict[str, Any] = {}
    for name in _TABLES:
        table = raw.get(name, {})
        inner = where.inside(name)
        if not isinstance(table, dict):
            where.refuse("must be a table", name)
        if name == "outcomes":
            read: dict[str, Any] = _outcome_table(inner, table)
        elif name == "manual_refunds":
            read = _manual_refunds(inner, table)
        elif name == "credit_kinds":
            read = _kinds_table(inner, table)
        elif name == "deadlines":
            _known_keys(inner, table)
            read = {k: tuple(v) for k, v in _via_setting(inner, table, _deadlines).items()}
        else:
            read = _via_setting(inner, table, _packs)
        tables[name] = {**(dict(getattr(base, name)) if base else {}), **read}
    for key in _MANUAL_REFUNDS.keys() - tables["manual_refunds"].keys():
        where.inside("manual_refunds").refuse(
            "the first version of the shipped default states every rule", key
        )
    return Rules(**values, **tables)


def _kinds_table(where: _Where, table: Mapping[str, Any]) -> dict[str, CreditKind]:
    read: dict[str, CreditKind] = {}
    for name, value in table.items():
        try:
            read[name] = read_kind(name, value)
        except KindProblem as problem:
            where.refuse(str(problem), name, inner=problem.key)
    return read


def _deadlines(text: str) -> object:
    return DeadlinePolicy.from_json(text)


def _packs(text: str) -> object:
    return PackCatalog.from_json(text)


def _head(where: _Where, raw: Mapping[str, Any]) -> tuple[str, int]:
    """A version's name and effective time (ms since the epoch)."""
    for key in raw:
        if key not in _KEYS:
            where.refuse("unknown key", key)
    name = raw.get("name")
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        where.refuse("must be 1 to 64 letters, digits or ._:+- (a letter or digit first)", "name")
    effective = raw.get("effective")
    if not isinstance(effective, datetime) or effective.tzinfo is None:
        where.refuse(
            "must be an RFC 3339 date-time with an offset (2026-01-01T00:00:00Z)", "effective"
        )
    return name, (effective - _EPOCH) // timedelta(milliseconds=1)  # exact: no float


def parse_policy(text: str, *, source: str, base: Rules | None) -> PolicyBook:
    """The versions of a policy file's ``text``, each with every rule: a rule a version
    leaves out is the version before's, the first version's from ``base`` (None: the first
    version states every rule). Raises ``PolicyError`` naming ``source``, key and line."""
    lines = _Lines.scan(text)
    where = _Where(source, lines)
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        at = re.search(r"at line (\d+)", str(exc))
        raise PolicyError(
            f"not TOML: {str(exc).split(' (at', 1)[0]}",
            file=source,
            line=int(at.group(1)) if at else 1,
            key="",
        ) from None
    for key in document:
        if key != "version":
            where.refuse("unknown key (a policy file holds [[version]] tables only)", key)
    raw_versions = document.get("version")
    if not isinstance(raw_versions, list) or not raw_versions:
        where.refuse("a policy file holds at least one [[version]]")
    heads: list[tuple[int, str, int]] = []  # (effective_ms, name, index in the file)
    seen_names: dict[str, int] = {}
    seen_times: dict[int, int] = {}
    for index, raw in enumerate(raw_versions):
        at_version = _Where(source, lines, index)
        name, effective_ms = _head(at_version, raw)
        if name in seen_names:
            at_version.refuse(f"name also used by version[{seen_names[name] + 1}]", "name")
        if effective_ms in seen_times:
            other = seen_times[effective_ms] + 1
            at_version.refuse(
                f"same effective time as version[{other}] (effective times are kept to the"
                " millisecond: a finer fraction is dropped)",
                "effective",
            )
        seen_names[name], seen_times[effective_ms] = index, index
        heads.append((effective_ms, name, index))
    versions: list[PolicyVersion] = []
    for effective_ms, name, index in sorted(heads):
        rules = _rules(_Where(source, lines, index), raw_versions[index], base)
        versions.append(PolicyVersion(name, effective_ms, rules))
        base = rules
    return PolicyBook(tuple(versions), source, tuple(name for _, name, _ in heads))


@cache
def shipped_policy() -> PolicyBook:
    """The policy shipped with Refundry (``handlers/policy_default.toml``): today's defaults
    as one version, the base every policy file's first version inherits from."""
    text = files("handlers").joinpath("policy_default.toml").read_text(encoding="utf-8")
    return parse_policy(text, source=SHIPPED, base=None)


def read_policy(path: str | Path) -> PolicyBook:
    """The policy file at ``path`` (UTF-8 TOML, at most :data:`MAX_POLICY_BYTES`), its first
    version inheriting from the shipped default's last, which is in force (first in the
    book) until the file's first version takes effect (unless the file names a version as
    the shipped one is named: then the file's first version is in force from the start).
    ``PolicyError`` for a file that cannot be read or used, naming it (and the key and
    line)."""
    source = str(path)
    try:
        data = _regular_file_bytes(Path(path), source)
    except OSError as exc:
        raise PolicyError(f"cannot be read: {exc.strerror}", file=source, line=0, key="") from None
    if len(data) > MAX_POLICY_BYTES:
        raise PolicyError(f"larger than {MAX_POLICY_BYTES} bytes", file=source, line=0, key="")
    try:
        text = data.decode("utf-8").removeprefix("\ufeff")  # a BOM some editors write
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise PolicyError("not UTF-8", file=source, line=line, key="") from None
    shipped = shipped_policy().versions[-1]
    book = parse_policy(text, source=source, base=shipped.rules)
    names = {v.name for v in book.versions}
    if book.versions[0].effective_ms <= shipped.effective_ms or shipped.name in names:
        return book
    # Before the file's first version takes effect, the version it inherits from is in force.
    return PolicyBook((shipped, *book.versions), source, book.written)


def _regular_file_bytes(path: Path, source: str) -> bytes:
    """At most :data:`MAX_POLICY_BYTES` + 1 bytes of ``path``, refused (``PolicyError``)
    unless it is a regular file: opened without blocking (a FIFO with no writer would block
    the open) and checked on the open descriptor, so a FIFO or a device (``/dev/zero``)
    never hangs a process or fills its memory."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    with os.fdopen(fd, "rb") as opened:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise PolicyError(
                "not a regular file (a FIFO, socket or device)", file=source, line=0, key=""
            )
        return opened.read(MAX_POLICY_BYTES + 1)


def key_line(book: PolicyBook, version: str, key: str) -> int:
    """The line of ``key`` in the version named ``version`` of the file ``book`` was read
    from (its ``[[version]]`` line when it inherits the key; 0 when the file cannot be read
    again), for an error found after the file was read (``workers.policy_settings``)."""
    try:
        text = _regular_file_bytes(Path(book.source), book.source).decode("utf-8")
    except (OSError, UnicodeDecodeError, PolicyError):
        return 0
    return _Lines.scan(text).line(book.written.index(version), None, key)

"""What each ``refundry`` option accepts: one documented range or form per option, checked by
click before a command runs, so a bad value is a usage error (exit 2) naming the option,
never a traceback, an overflow or a value used as something else.

| option | accepts |
| --- | --- |
| ``-p/--processes`` | 1 to 64 |
| ``-t/--threads`` | 1 to 256 |
| ``--generations`` | 1 to 1000000 |
| ``--deliveries`` | 1 to 10000000 |
| ``--concurrency`` | 1 to 1024 |
| ``--timeout`` | a finite number of seconds above 0, at most 86400 |
| ``--window`` | 1 to 31622400 seconds (366 days) |
| ``--grace-ms`` | ``REFUNDRY_INBOX_GRACE_MS``'s range |
| ``--port`` | 1 to 65535 |
| ``--host`` | an IP address or a host name (letters, digits, ``-``, dots) |
| ``--since`` | epoch seconds, ISO date or time, or an age (``48h``, ``90m``, ``2d``): 1970 to now |
| ``export --since/--until`` | the same, to the millisecond; ``--until`` up to 366 days ahead |
"""

from __future__ import annotations

import ipaddress
import math
import re
import time
from datetime import UTC, datetime
from typing import Any, Final

import click

from workers.settings import VARIABLES, WholeNumber

__all__ = [
    "CONCURRENCY",
    "DELIVERIES",
    "EVENTS",
    "GENERATIONS",
    "GRACE_MS",
    "HOST",
    "PORT",
    "PROCESSES",
    "RATE",
    "SINCE",
    "SINCE_MS",
    "THREADS",
    "TIMEOUT_S",
    "UNTIL_MS",
    "WINDOW_S",
]

PROCESSES: Final = click.IntRange(1, 64)
THREADS: Final = click.IntRange(1, 256)
GENERATIONS: Final = click.IntRange(1, 1_000_000)
DELIVERIES: Final = click.IntRange(1, 10_000_000)
EVENTS: Final = click.IntRange(1, 10_000_000)
RATE: Final = click.FloatRange(0.1, 1_000_000, min_open=False)
CONCURRENCY: Final = click.IntRange(1, 1024)
WINDOW_S: Final = click.IntRange(1, 366 * 86_400)
PORT: Final = click.IntRange(1, 65_535)


def _setting_range(variable: str) -> click.IntRange:
    parse = VARIABLES[variable][1]
    assert isinstance(parse, WholeNumber)
    return click.IntRange(parse.low, parse.high)


GRACE_MS: Final = _setting_range("REFUNDRY_INBOX_GRACE_MS")


class _FiniteSeconds(click.FloatRange):
    """``FloatRange`` lets ``nan`` through (every comparison with it is false)."""

    name = "seconds"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        seconds = super().convert(value, param, ctx)
        if not math.isfinite(seconds):
            self.fail(f"{value!r} is not a finite number of seconds", param, ctx)
        return seconds


TIMEOUT_S: Final = _FiniteSeconds(min=0, max=86_400, min_open=True)

_LABEL = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)")


class _Host(click.ParamType[str, Any]):
    """An address to listen on: an IP address, or a host name of RFC 1123 labels (checked
    by shape: resolving it here could hang on DNS; the server reports what it cannot bind)."""

    name = "host"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        text = str(value)
        try:
            ipaddress.ip_address(text)
        except ValueError:
            labels = text.removesuffix(".").split(".")
            if len(text) > 253 or not all(_LABEL.fullmatch(label) for label in labels):
                self.fail(f"{text!r} is not an IP address or a host name", param, ctx)
        return text


HOST: Final = _Host()

_AGE = re.compile(r"([0-9]{1,9})([smhd])")
_UNIT_S: Final = {"s": 1, "m": 60, "h": 3600, "d": 86_400}


class _Moment(click.ParamType[int, Any]):
    """A moment: epoch seconds (a fraction allowed), an ISO date or time, or an age such as
    ``48h``, ``90m``, ``2d``; returned as epoch milliseconds (the ledger's resolution: finer
    digits are dropped), from 0 (1970) to ``ahead_s`` seconds after now. Parsed here: a
    two-line grammar, not worth a dependency."""

    name = "since"

    def __init__(self, *, ahead_s: int = 0) -> None:
        self._ahead_s = ahead_s

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, int):
            return value
        text = str(value).strip()
        now_ms = time.time_ns() // 1_000_000
        age = _AGE.fullmatch(text)
        if age is not None:
            moment_ms = now_ms - int(age[1]) * _UNIT_S[age[2]] * 1000
        elif _EPOCH.fullmatch(text):
            whole, _, fraction = text.partition(".")
            moment_ms = int(whole) * 1000 + int((fraction + "000")[:3])
        else:
            moment_ms = self._iso(text, param, ctx)
        if not 0 <= moment_ms <= now_ms + self._ahead_s * 1000:
            self.fail(f"{text!r} is before 1970 or {self._too_late}", param, ctx)
        return moment_ms

    @property
    def _too_late(self) -> str:
        if self._ahead_s == 0:
            return "in the future"
        return f"more than {self._ahead_s // 86_400} days ahead"

    def _iso(self, text: str, param: click.Parameter | None, ctx: click.Context | None) -> int:
        try:
            moment = datetime.fromisoformat(text)
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=UTC)
            return int(moment.timestamp()) * 1000 + moment.microsecond // 1000
        except (ValueError, OverflowError, OSError):
            self.fail(
                f"{text!r}: epoch seconds, an ISO date/time, or an age (48h, 90m, 2d)", param, ctx
            )


_EPOCH = re.compile(r"[0-9]{1,12}(\.[0-9]{1,9})?")


class _Since(_Moment):
    """``--since`` of commands that work in whole seconds: a moment up to now, in epoch
    seconds (the fraction dropped)."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, int):
            return value
        return super().convert(value, param, ctx) // 1000


SINCE: Final = _Since()
SINCE_MS: Final = _Moment()
UNTIL_MS: Final = _Moment(ahead_s=366 * 86_400)

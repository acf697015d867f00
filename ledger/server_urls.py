"""Server URLs (``DATABASE_URL``, ``REDIS_URL``) parsed by Refundry before any driver sees
them, so that what cannot be used is refused in one line naming the variable, and what is
printed (``status``, ``--help``, an outage line) never holds the password.

A URL is ``scheme://[user[:password]@]host[:port][,host[:port]…][/path][?query]``. The user
name and password must be percent-encoded (RFC 3986, section 3.2.1): a ``/``, ``?``, ``#``,
``@``, ``[``, ``]``, space or stray ``%`` in them makes the URL ambiguous, and drivers then
split it somewhere else (libpq echoes what it could not parse, the password included). Such
a URL is refused, its password never repeated; so is a port that is not a number from 1 to
65535.

Hand-written on purpose: ``urllib.parse.urlsplit`` accepts exactly these ambiguous URLs
(it splits at the first ``/`` or ``#`` of a password) without saying so.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Final
from urllib.parse import unquote

from ledger.errors import ConfigurationError

__all__ = ["ServerURL", "parse_server_url"]

_SCHEME: Final = re.compile(r"([A-Za-z][A-Za-z0-9+.-]{0,31}+)://")
_USERINFO: Final = re.compile(r"(?:[A-Za-z0-9._~!$&'()*+,;=:-]|%[0-9A-Fa-f]{2})*+")
_HOST: Final = re.compile(
    r"\[[0-9A-Fa-f:.]{2,45}+\]|(?:[A-Za-z0-9._~!$&'()*+;=-]|%[0-9A-Fa-f]{2})*+"
)
_ENCODE: Final = (
    "percent-encode the user name and password (/ as %2F, ? as %3F, # as %23, @ as %40, "
    "% as %25, space as %20)"
)


@dataclass(frozen=True, slots=True)
class ServerURL:
    """A parsed server URL; ``location`` is safe to print."""

    scheme: str
    username: str
    password: str | None = field(repr=False)
    hosts: tuple[tuple[str, int | None], ...]
    """``(host, port)`` pairs: libpq takes a comma-separated list; the host may be empty
    (the driver's default: a local socket)."""
    path: str
    query: str = field(repr=False)  # may carry a password (``?password=…``)

    @property
    def location(self) -> str:
        """``scheme://user@host:port/path``: no password, no query."""
        user = f"{self.username}@" if self.username else ""
        hosts = ",".join(host if port is None else f"{host}:{port}" for host, port in self.hosts)
        return f"{self.scheme}://{user}{hosts}{self.path}"


def parse_server_url(url: str, *, variable: str, schemes: tuple[str, ...]) -> ServerURL:
    """``url`` parsed; ``ConfigurationError`` naming ``variable`` (and the supported
    ``schemes``, without ``://``) for a URL that is not one, has another scheme, a user
    name or password that is not percent-encoded, a host that is not one, or a bad port.
    No error repeats the URL."""
    supported = ", ".join(f"{s}://" for s in schemes)
    scheme_match = _SCHEME.match(url)
    if scheme_match is None:
        raise ConfigurationError("not a URL (scheme://…)", variable=variable, supported=supported)
    scheme = scheme_match[1].lower()
    if scheme not in schemes:
        raise ConfigurationError(
            "unsupported URL scheme", variable=variable, scheme=scheme, supported=supported
        )
    rest = url[scheme_match.end() :]
    if "#" in rest or any(ch.isspace() for ch in rest):
        raise ConfigurationError(f"a '#' or a space in the URL; {_ENCODE}", variable=variable)
    split = re.search(r"[/?]", rest)
    authority, tail = (
        (rest, "") if split is None else (rest[: split.start()], rest[split.start() :])
    )
    if authority.count("@") > 1 or "@" in tail:
        raise ConfigurationError(f"an '@' after the user name; {_ENCODE}", variable=variable)
    userinfo, _, hostports = authority.rpartition("@")
    if not _USERINFO.fullmatch(userinfo):
        raise ConfigurationError(
            f"a stray character in the user name or password; {_ENCODE}", variable=variable
        )
    user, colon, password = userinfo.partition(":")
    path, _, query = tail.partition("?")
    return ServerURL(
        scheme=scheme,
        username=unquote(user),
        password=unquote(password) if colon else None,
        hosts=tuple(_host_port(part, variable) for part in hostports.split(",")),
        path=path,
        query=query,
    )


def _host_port(text: str, variable: str) -> tuple[str, int | None]:
    host_match = _HOST.match(text)
    assert host_match is not None  # every pattern of _HOST can match empty
    host, port_text = host_match[0], text[host_match.end() :]
    if not port_text:
        return host, None
    digits = port_text.removeprefix(":")
    if port_text[0] != ":" or not (digits.isascii() and digits.isdigit() and len(digits) <= 5):
        raise ConfigurationError("the host or port is not one", variable=variable)
    port = int(digits)
    if not 1 <= port <= 65535:
        raise ConfigurationError("the port is not from 1 to 65535", variable=variable, port=port)
    return host, port

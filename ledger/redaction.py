"""Masks secrets before anything leaves Refundry's hands: log lines, dead letters and their
reasons, applied inbox payloads, CLI output and error reports.

One place decides what a secret looks like, by key name and by value:

- a key whose words name a secret (``api_key``, ``apiKeys``, ``accessKey``, ``private_key``,
  ``passwd``, ``pass``, ``X-Auth``, ``Stripe-Signature``, ``sig``, ``client_secret``,
  ``Ocp-Apim-Subscription-Key``…) has its value masked, whatever it holds; a key that merely
  contains such a word (``tokens_used``, ``author``, ``passed``) does not. A header given as a
  ``[name, value]`` pair (a list of headers) is treated like a key and its value;
- in any string: ``Bearer``/``Basic`` credentials, JWTs, PEM private key blocks, well-known
  API key formats (``sk_live_…``, ``whsec_…``, ``sk-…``, ``r8_…``, ``hf_…``, ``ghp_…``,
  ``AIza…``, ``xoxb-…``, ``AKIA…``, fal's ``Key <id>:<secret>``), ``secret_key=…``-style pairs
  (also quoted, JSON-escaped, URL-encoded ``%3D``, a ``('x-api-key', '…')`` pair, and a value
  after an ``Authorization`` scheme word such as ``Bearer``, ``Key`` or ``ApiKey``), and in
  URLs the password of ``scheme://user:password@host`` (also ``//user:password@host``
  without a scheme), the user part of a web URL without a password (a Sentry DSN's key) and
  the whole query string (presigned artifact URLs carry their credentials there); SendGrid
  (``SG.….…``) and Twilio (``SK`` + 32 hex) keys; connection strings' ``AccountKey=…`` and
  ``SharedAccessKey=…``;
- a HAR-style header object ``{"name": "Authorization", "value": "…"}`` loses its value; a
  key naming a connection URL (``DATABASE_URL``, ``REDIS_URL``, ``BROKER_URL``) keeps its
  value's URL without the password (the whole value is masked when it is no URL);
- personal data: e-mail addresses (``jane.doe@example.com``), wherever they appear (a
  Checkout Session's ``customer_email``, a provider's error message). A URL's user name
  (``postgresql://refundry@db.example.com``) is not an address and is kept.

Limits, so that no input can stall a worker or escape the dead-letter queue: strings are cut
to :data:`MAX_STRING_CHARS`, containers nested deeper than :data:`MAX_DEPTH` are replaced by
a marker, and the walk is iterative (no recursion). Every pattern is anchored at the start of
a run of its characters and uses possessive quantifiers, so a scan is linear in the input.

Hand-written on purpose: the rules are ours (which keys and value shapes are secret on the
APIs Refundry talks to), and general-purpose scrubbers work on key names only.
"""

from __future__ import annotations

import functools
import itertools
import re
from typing import Any
from urllib.parse import urlsplit, urlunsplit

__all__ = ["MASK", "MAX_DEPTH", "MAX_STRING_CHARS", "is_secret_key", "redact", "redact_text"]

MASK = "[redacted]"
MAX_DEPTH = 64
"""Containers nested deeper than this are replaced by ``[too deep]``."""
MAX_STRING_CHARS = 8_192
"""Longer strings are cut, with a marker saying how much was dropped."""

_SECRET_WORDS = frozenset(
    {
        "apikey",
        "auth",
        "authorization",
        "bearer",
        "cookie",
        "cookies",
        "credential",
        "credentials",
        "dsn",
        "hmac",
        "jwt",
        "otp",
        "passcode",
        "passphrase",
        "passwd",
        "password",
        "pwd",
        "secret",
        "secrets",
        "sig",
        "signature",
        "token",
    }
)
_KEY_QUALIFIERS = frozenset(
    {
        "access",
        "account",
        "api",
        "client",
        "encryption",
        "master",
        "private",
        "secret",
        "signing",
        "subscription",
    }
)
_KEY_WORDS = frozenset({"key", "keys"})
_LAST_WORDS = frozenset({"pass"})
"""Secret only as a key's last word: ``pass``, ``db_pass`` (``pass_rate`` is not)."""
_WORD = re.compile(r"[A-Z]?[a-z0-9]+|[A-Z]+(?![a-z])")

_GAP = r"(?:\s|\\++[tnr])"
"""Whitespace between a label or scheme and its credential, real or as ``repr()``/JSON show
it (``\\t``, ``\\n``, ``\\r``, escaped once or more): a reason is redacted as it will be
shown, and a tab shown as ``\\t`` must not hide the credential after it."""
_CREDENTIAL_AFTER_SCHEME = re.compile(rf"(?i)\b(bearer|basic|token)({_GAP}++)[^\s\"',;]{{8,}}+")
_FAL_KEY = re.compile(rf"\b(Key)({_GAP}++)[\w.-]{{4,}}+:[\w.-]{{8,}}+")
"""fal's ``Authorization: Key <key id>:<key secret>`` (https://docs.fal.ai/model-apis/authentication)."""
_JWT = re.compile(r"(?<![\w-])eyJ[\w-]*+\.[\w-]*+\.[\w-]*+")
_KNOWN_KEY = re.compile(
    r"(?<![\w-])(?:"
    r"(?:sk|rk)_(?:live|test)_[\w-]++"  # Stripe secret and restricted keys
    r"|whsec_[\w+/=-]++"  # webhook signing secrets
    r"|sk-[\w-]{16,}+"  # OpenAI, Anthropic
    r"|r8_[\w-]{16,}+"  # Replicate
    r"|hf_[A-Za-z0-9]{20,}+"  # Hugging Face
    r"|gh[pousr]_[A-Za-z0-9]{20,}+|github_pat_\w{20,}+"  # GitHub
    r"|AIza[\w-]{20,}+"  # Google API keys
    r"|xox[abposr]-[\w-]{4,}+"  # Slack
    r"|(?:AKIA|ASIA)[0-9A-Z]{12,}+"  # AWS access key ids
    r"|SG\.[\w-]{8,}+\.[\w-]{8,}+"  # SendGrid
    r"|SK[0-9a-fA-F]{32}(?![\w-])"  # Twilio API key sids
    r")"
)
_PEM_BEGIN = re.compile(r"-----BEGIN ([A-Z0-9 ]{0,40}+)-----")
_PEM_END = "-----END "
_PAIR_KEY = re.compile(
    r"(?<![\w-])([\w-]{1,64}+)"
    rf"(?:(\\?[\"']){_GAP}*+([=:,])|{_GAP}*+(?:[=:]|%3[DdAa]))"  # a quoted key, then a comma
    rf"{_GAP}*+(\\?[\"'])?+"
)
_PAIR_VALUE = re.compile(r"[^\s\"'\\;&}\]]++")
_SCHEME_WORD = re.compile(rf"(?i)(?:bearer|basic|digest|token|key|apikey|api-key|hmac|dsn){_GAP}++")
"""An ``Authorization`` scheme before the credential: kept, the credential after it masked."""
_QUOTED_VALUE_CHARS = 1024
_PLAIN_USER = re.compile(r"[A-Za-z][A-Za-z0-9._-]{0,31}")
_URL = re.compile(r"(?i)(?<![\w+.-])[a-z][a-z0-9+.-]{0,31}+://[^\s\"'<>]++")
_EMAIL = re.compile(r"(?<![\w.+%/:-])[\w.+%-]{1,64}+@(?:[A-Za-z0-9-]{1,63}+\.)++[A-Za-z]{2,24}+\b")
"""An e-mail address; not the user of ``scheme://user@host`` (preceded by ``/``)."""
_SCHEMELESS_PASSWORD = re.compile(r"(?<![\w+.:/-])//([^\s/@:\"'<>]{1,256}+):[^\s/@\"'<>]{1,1024}+@")
"""``//user:password@host`` without a scheme (a network-path reference, RFC 3986 §4.2)."""
_WEB_SCHEMES = frozenset({"http", "https", "ws", "wss"})
"""Schemes whose user part, when there is no password, is a credential (a Sentry DSN's key,
``https://<token>@github.com``), never a user name an engineer needs."""
_CONNECTION_WORDS = frozenset(
    {"amqp", "broker", "cache", "celery", "database", "db", "dsn", "mongo", "mongodb", "mysql",
     "postgres", "postgresql", "rabbitmq", "redis", "sentry", "sql"}
)  # fmt: skip
"""With ``url``/``uri``, a key naming a connection URL (``DATABASE_URL``, ``REDIS_URL``)."""


@functools.lru_cache(maxsize=4096)  # the same few key names come back in every payload
def is_secret_key(name: str) -> bool:
    """True when a mapping key names a secret (``api_key``, ``X-Auth``, ``privateKey``)."""
    words = [w.lower() for w in _WORD.findall(name[:256])]
    if any(w in _SECRET_WORDS for w in words) or (words and words[-1] in _LAST_WORDS):
        return True
    return any(a in _KEY_QUALIFIERS and b in _KEY_WORDS for a, b in itertools.pairwise(words))


def redact_text(text: str, *, limit: int = MAX_STRING_CHARS) -> str:
    """``text`` with every secret-looking value masked (see the module docstring), cut to
    ``limit`` characters."""
    if len(text) > limit:
        text = f"{text[:limit]}…[{len(text) - limit} chars cut]"
    text = _redact_pem(text)
    text = _URL.sub(_redact_url, text)
    text = _SCHEMELESS_PASSWORD.sub(rf"//\1:{MASK}@", text)
    text = _CREDENTIAL_AFTER_SCHEME.sub(_keep_scheme, text)
    text = _FAL_KEY.sub(_keep_scheme, text)
    text = _JWT.sub(MASK, text)
    text = _KNOWN_KEY.sub(MASK, text)
    text = _EMAIL.sub(MASK, text)
    return _redact_pairs(text)


def redact(value: Any) -> Any:
    """A copy of ``value`` (JSON-like: dicts, lists, tuples, scalars) with secrets masked.

    Secret-named keys lose their value; every string, keys included, goes through
    :func:`redact_text`. Iterative, so any depth is safe; below :data:`MAX_DEPTH` the
    content is replaced by ``[too deep]``.
    """
    root: list[Any] = [None]
    stack: list[tuple[Any, Any, Any, int]] = [(value, root, 0, 0)]
    while stack:
        item, parent, slot, depth = stack.pop()
        if isinstance(item, dict):
            if depth >= MAX_DEPTH:
                parent[slot] = "[too deep]"
                continue
            out: dict[Any, Any] = {}
            parent[slot] = out
            har_secret = _is_secret_header_object(item)
            for k, v in item.items():
                key = redact_text(k) if isinstance(k, str) else k
                if (isinstance(k, str) and is_secret_key(k)) or (har_secret and k == "value"):
                    out[key] = MASK
                elif isinstance(k, str) and isinstance(v, str) and _is_connection_url_key(k):
                    out[key] = redact_text(v) if "://" in v else MASK
                else:
                    out[key] = None
                    stack.append((v, out, key, depth + 1))
        elif isinstance(item, list | tuple):
            if depth >= MAX_DEPTH:
                parent[slot] = "[too deep]"
                continue
            items: list[Any] = [None] * len(item)
            parent[slot] = items
            if _is_secret_pair(item):  # ["x-api-key", "…"]: a header as a name, value pair
                items[:] = [redact_text(item[0]), MASK]
                continue
            stack.extend((v, items, i, depth + 1) for i, v in enumerate(item))
        elif isinstance(item, str):
            parent[slot] = redact_text(item)
        else:
            parent[slot] = item
    return root[0]


def _is_secret_pair(item: list[Any] | tuple[Any, ...]) -> bool:
    return len(item) == 2 and isinstance(item[0], str) and is_secret_key(item[0])


def _is_secret_header_object(item: dict[Any, Any]) -> bool:
    """A HAR-style header, ``{"name": "Authorization", "value": "…"}``
    (http://www.softwareishard.com/blog/har-12-spec/#headers): its value is the secret."""
    name = item.get("name")
    return "value" in item and isinstance(name, str) and is_secret_key(name)


@functools.lru_cache(maxsize=1024)
def _is_connection_url_key(name: str) -> bool:
    """``DATABASE_URL``, ``redisUri``: its value's credentials are masked (the whole value
    when it is no URL)."""
    words = {w.lower() for w in _WORD.findall(name[:256])}
    return bool(words & {"url", "uri"}) and bool(words & _CONNECTION_WORDS)


def _keep_scheme(match: re.Match[str]) -> str:
    return f"{match[1]}{match[2]}{MASK}"


def _redact_pem(text: str) -> str:
    """Mask the body of every PEM private key block (up to its END line, or the end of the
    text when it was cut). Each block is found once and skipped: linear."""
    out: list[str] = []
    done = 0
    for begin in _PEM_BEGIN.finditer(text):
        if begin.start() < done or not begin[1].endswith("PRIVATE KEY"):
            continue
        end = text.find(_PEM_END, begin.end())
        out += [text[done : begin.end()], MASK]
        done = len(text) if end < 0 else end
    out.append(text[done:])
    return "".join(out)


def _redact_url(match: re.Match[str]) -> str:
    url = match[0]
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port
    except ValueError:  # not a URL after all (a bad port, brackets): mask what follows ://
        scheme, _, _ = url.partition("://")
        return f"{scheme}://{MASK}"
    netloc = parts.netloc
    if "@" not in netloc and not parts.query and not parts.fragment:
        return url  # nothing secret; left exactly as written (``sqlite:///…`` included)
    if parts.password is not None or "@" in netloc:
        user = parts.username or ""
        hostport = f"[{host}]" if ":" in host else host
        if port is not None:
            hostport = f"{hostport}:{port}"
        web = parts.scheme.lower() in _WEB_SCHEMES
        if parts.password is None and (web or not _PLAIN_USER.fullmatch(user)):
            user = MASK  # a token given as the user name (``https://<token>@host``)
        netloc = f"{user}:{MASK}@{hostport}" if parts.password is not None else f"{user}@{hostport}"
    query = MASK if parts.query else ""
    fragment = MASK if parts.fragment else ""
    return urlunsplit((parts.scheme, netloc, parts.path, query, fragment))


def _redact_pairs(text: str) -> str:
    """Mask the value after every ``secret_key=`` / ``secret-key: `` in free text. Keys are
    found one after another (a non-secret key consumes only itself and its separator, so
    ``failed: password=…`` still finds ``password``). A quoted value is masked up to its
    closing quote; an ``Authorization``-style scheme word (``Bearer``, ``Key``) is kept and
    the credential after it masked."""
    out: list[str] = []
    done = 0
    for match in _PAIR_KEY.finditer(text):
        if match.start() < done or not is_secret_key(match[1]):
            continue
        if match[3] == "," and not match[4]:
            continue  # ('secret', 'value') is a pair; 'SECRET', other=… names a variable
        start = match.end()
        scheme = _SCHEME_WORD.match(text, start)
        if scheme is not None:
            start = scheme.end()
        end = _value_end(text, start, match[4])
        if end is None or text.startswith(MASK, start):
            continue
        out += [text[done:start], MASK]
        done = end
    out.append(text[done:])
    return "".join(out)


def _value_end(text: str, start: int, quote: str | None) -> int | None:
    """Where the value starting at ``start`` ends: at its closing ``quote`` when it was
    opened by one (within ``_QUOTED_VALUE_CHARS``), else after its run of value characters;
    ``None`` when there is no value."""
    if quote:
        end = text.find(quote, start, start + _QUOTED_VALUE_CHARS)
        if end > start:
            return end
    value = _PAIR_VALUE.match(text, start)
    return None if value is None else value.end()

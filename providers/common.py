"""What every provider classifier shares besides artifacts: the adapter, lookups and refusals.

A provider module is a rules function ``(payload, operation) -> Classification`` wrapped in
:class:`Adapter`, which refuses payloads that are not JSON objects before the rules see them.
The rules read fields with :func:`lookup` and friends, which never raise on odd shapes, and
raise :class:`~ledger.errors.Unclassifiable` through :func:`require_status`, :func:`status_in`
and :func:`refuse` rather than guess. A task's creation answer is :func:`created`.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping
from typing import Any, TypeVar

from ledger.errors import Unclassifiable
from ledger.outcomes import Outcome
from providers.base import Classification

__all__ = [
    "Adapter",
    "Payload",
    "Rules",
    "as_int",
    "created",
    "items",
    "job_id",
    "lookup",
    "mapping",
    "refuse",
    "require_status",
    "short",
    "status_in",
    "text",
]

Payload = Mapping[str, Any]
Rules = Callable[[Payload, str | None], Classification]
K = TypeVar("K", bound=Hashable)


class Adapter:
    """A ``ProviderAdapter`` made of a name and the provider's rules function."""

    __slots__ = ("_rules", "name")

    def __init__(self, name: str, rules: Rules) -> None:
        self.name = name
        self._rules = rules

    def classify(self, payload: Mapping[str, Any], operation: str | None = None) -> Classification:
        """Classify ``payload``; lists, strings and ``None`` are refused as unclassifiable."""
        if not isinstance(payload, Mapping):
            raise Unclassifiable(
                "payload is not a JSON object", provider=self.name, type=type(payload).__name__
            )
        return self._rules(payload, operation)

    def __repr__(self) -> str:
        return f"Adapter({self.name!r})"


def lookup(payload: object, path: str) -> Any:
    """The value at a dotted ``path`` of nested objects, or ``None`` if any step is missing."""
    current: Any = payload
    for key in path.split("."):
        if not isinstance(current, Mapping):
            return None
        current = current.get(key)
    return current


def mapping(value: object) -> Payload | None:
    """``value`` if it is a JSON object, else ``None``."""
    return value if isinstance(value, Mapping) else None


def items(value: object) -> list[Any]:
    """``value`` if it is a JSON array, else an empty list."""
    return list(value) if isinstance(value, list | tuple) else []


def as_int(value: object) -> int | None:
    """An integer code given as a number or a digit string; booleans are not codes."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value.strip())
    return None


def text(value: object) -> str:
    """``value`` if it is a string, else ``""``: for messages that may be absent or null."""
    return value if isinstance(value, str) else ""


def short(value: object, limit: int = 60) -> str:
    """A value as it should appear in a one-line reason."""
    shown = repr(value) if isinstance(value, str) else str(value)
    shown = " ".join(shown.split())
    return shown if len(shown) <= limit else shown[: limit - 1] + "…"


def job_id(payload: Payload, *paths: str) -> str | None:
    """The first non-empty string or integer id found at one of ``paths``, exactly as sent:
    never trimmed (a padded id is refused by the identifier rule, not read as another job)."""
    for path in paths:
        value = lookup(payload, path)
        if isinstance(value, str) and value.strip():
            return value
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)
    return None


def created(job: str, decided: str) -> Classification:
    """A task's creation answer (an id, no status, no result): ``pending``.

    Decision: the pipeline charged a generation whose task the provider accepted; the job
    exists and has not finished. Its result is still to come (a callback, or the stuck sweep's
    status poll before the deadline), so nothing is refunded and nothing is kept yet
    (MiniMax ``{"task_id", "base_resp"}``, the video creation answer reproduced at
    https://docs.kkiai.com/video-models/hailuo/submit-video-generation-task.html; Suno
    ``{"code": 200, "data": {"taskId"}}``, https://docs.sunoapi.org/cn/suno-api/generate-lyrics).
    Refusing it instead would send a documented answer to the dead-letter queue.
    """
    return Classification(Outcome.PENDING, f"{decided}: task created, not finished", job)


def refuse(message: str, provider: str, **fields: Any) -> Unclassifiable:
    """The error to raise for a payload that the rules cannot decide."""
    return Unclassifiable(message, provider=provider, **fields)


def require_status(payload: Payload, path: str, provider: str) -> str:
    """The non-empty status string at ``path``; refuse a missing or non-string status."""
    value = lookup(payload, path)
    if value is None:
        raise refuse("missing status", provider, field=path)
    if not isinstance(value, str) or not value.strip():
        raise refuse("unknown status", provider, field=path, value=short(value))
    return value


def status_in(table: Mapping[K, Outcome], status: K, provider: str, field: str) -> Outcome:
    """Look ``status`` up in a provider's table; an unknown status is refused, never guessed."""
    try:
        return table[status]
    except (KeyError, TypeError):
        raise refuse("unknown status", provider, field=field, value=short(status)) from None

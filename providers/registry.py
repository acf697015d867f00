"""Every provider adapter by name, and the one entry point the handlers call.

``ADAPTERS``, ``PROVIDER_NAMES``, ``get_adapter`` and ``classify`` are a contract other parts of
Refundry code against; add a provider by adding its module's ``ADAPTER`` to ``_ALL``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from ledger.errors import UnknownProvider
from providers import elevenlabs, fal, kling, minimax, openai, replicate, suno
from providers.base import Classification, ProviderAdapter

__all__ = ["ADAPTERS", "PROVIDER_NAMES", "classify", "get_adapter"]

_ALL: Final[tuple[ProviderAdapter, ...]] = (
    fal.ADAPTER,
    kling.ADAPTER,
    openai.ADAPTER,
    suno.ADAPTER,
    minimax.ADAPTER,
    elevenlabs.ADAPTER,
    replicate.ADAPTER,
)

ADAPTERS: Final[Mapping[str, ProviderAdapter]] = {adapter.name: adapter for adapter in _ALL}
"""Provider name (as used in charges, messages and fixtures) → its adapter."""

PROVIDER_NAMES: Final[tuple[str, ...]] = tuple(sorted(ADAPTERS))


def get_adapter(name: str) -> ProviderAdapter:
    """The adapter called ``name``; raise ``UnknownProvider`` for any other name."""
    adapter = ADAPTERS.get(name) if isinstance(name, str) else None
    if adapter is None:
        raise UnknownProvider(provider=name)
    return adapter


def classify(
    provider: str, payload: Mapping[str, Any], operation: str | None = None
) -> Classification:
    """Classify one ``payload`` of ``provider``; raise ``Unclassifiable`` rather than guess."""
    return get_adapter(provider).classify(payload, operation)

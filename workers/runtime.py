"""The per-process objects every entry point shares: settings, ledger, refund policy, and
the provider API client that fetches the job a thin webhook event names.

Built lazily, once per process (a forked worker builds its own), from the environment.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from functools import cache
from typing import Any

from handlers.deadlines import DeadlinePolicy
from handlers.generation import RefundPolicy
from handlers.thin_events import JobFetcher
from ledger import Ledger, open_ledger
from ledger.errors import ConfigurationError
from providers.openai_api import VideosClient
from workers.settings import Settings

__all__ = [
    "deadlines",
    "fetch_job",
    "job_fetchers",
    "ledger",
    "policy",
    "reset",
    "settings",
    "videos_client",
]

_lock = threading.Lock()


@cache
def settings() -> Settings:
    return Settings.from_env()


_ledger: Ledger | None = None


def ledger() -> Ledger:
    """The process's ledger; migrations are applied on first open."""
    global _ledger
    with _lock:
        if _ledger is None:
            s = settings()
            _ledger = open_ledger(
                s.database_url, policy_version=s.policy_version, pg_schema=s.pg_schema
            )
        return _ledger


def policy() -> RefundPolicy:
    return RefundPolicy(refund_cancelled=settings().refund_cancelled)


_videos: VideosClient | None = None


def videos_client() -> VideosClient:
    """The process's OpenAI Videos API client; ``ConfigurationError`` without an API key."""
    global _videos
    with _lock:
        if _videos is None:
            s = settings()
            if not s.openai_api_key:
                raise ConfigurationError(
                    "a thin webhook event cannot be fetched without an API key",
                    variable="OPENAI_API_KEY",
                )
            _videos = VideosClient(s.openai_api_base, s.openai_api_key)
        return _videos


def fetch_job(provider: str, job_id: str) -> Mapping[str, Any]:
    """The full job a thin webhook event names (``handlers.thin_events.JobFetcher``)."""
    if provider != "openai":
        raise ConfigurationError("no job API client for this provider", provider=provider)
    return videos_client().retrieve(job_id)


def job_fetchers() -> dict[str, JobFetcher]:
    """The providers whose status API this process can poll (the key is configured)."""
    return {"openai": fetch_job} if settings().openai_api_key else {}


@cache
def deadlines() -> DeadlinePolicy:
    return DeadlinePolicy.from_json(settings().deadlines_json)


def reset() -> None:
    """Forget the cached settings, ledger and API client (the environment changed)."""
    global _ledger, _videos
    with _lock:
        if _ledger is not None:
            _ledger.db.close()
        if _videos is not None:
            _videos.close()
        _ledger = None
        _videos = None
        settings.cache_clear()
        deadlines.cache_clear()

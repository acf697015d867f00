"""Settings as a test changes them: environment variables set for this process, its cached
settings and clients rebuilt (``workers.runtime.reset``), and the same variables returned for
the worker processes it starts."""

from __future__ import annotations

import pytest

from workers import runtime

__all__ = ["configure"]


def configure(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], **settings: str
) -> dict[str, str]:
    """Set ``settings`` (variable → value) for this test; returns ``env`` with them added."""
    for name, value in settings.items():
        monkeypatch.setenv(name, value)
    runtime.reset()
    return env | settings

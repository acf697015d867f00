"""Every shared provider fixture classifies as its ``expected`` outcome.

The fixtures live beside the repository (``../shared/fixtures/providers``); set
``REFUNDRY_FIXTURES`` to use another folder. A missing folder fails the suite: a green run
must mean the fixtures were read.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from ledger.outcomes import Outcome
from providers.registry import PROVIDER_NAMES, classify

DEFAULT_FIXTURES = Path(__file__).resolve().parents[2].parent / "shared" / "fixtures" / "providers"


def _fixture_root() -> Path:
    """``REFUNDRY_FIXTURES`` may name the providers folder or the fixtures folder above it."""
    root = Path(os.environ.get("REFUNDRY_FIXTURES") or DEFAULT_FIXTURES)
    return root / "providers" if (root / "providers").is_dir() else root


FIXTURES = _fixture_root()
FIXTURE_FILES = sorted(FIXTURES.glob("*/*.json")) if FIXTURES.is_dir() else []


def _load(path: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return loaded


def test_fixture_folder_is_present() -> None:
    assert FIXTURES.is_dir(), f"provider fixtures not found at {FIXTURES} (set REFUNDRY_FIXTURES)"
    assert FIXTURE_FILES, f"no */*.json provider fixtures under {FIXTURES}"


def test_every_fixture_provider_has_an_adapter() -> None:
    providers = {_load(path)["provider"] for path in FIXTURE_FILES}
    assert providers <= set(PROVIDER_NAMES), providers - set(PROVIDER_NAMES)


@pytest.mark.parametrize(
    "path",
    FIXTURE_FILES or [pytest.param(None, id="no-fixtures-found")],
    ids=[p.name for p in FIXTURE_FILES] or None,
)
def test_fixture_classifies_as_expected(path: Path | None) -> None:
    assert path is not None, f"no provider fixtures under {FIXTURES} (set REFUNDRY_FIXTURES)"
    case = _load(path)
    result = classify(case["provider"], case["payload"], case["operation"])
    assert result.outcome is Outcome(case["expected"]), f"{case['why']} / got: {result.reason}"
    assert result.reason and "\n" not in result.reason

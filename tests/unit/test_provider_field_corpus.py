"""Every field case (payloads found in public material) classifies as its ``expected`` outcome.

The cases live in ``tests/fixtures/field/<provider>/<case>.json`` (see the README there). An
empty or missing folder fails the suite: a green run must mean the cases were read.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from ledger.outcomes import Outcome
from providers.base import OPERATIONS
from providers.registry import PROVIDER_NAMES, classify

FIELD = Path(__file__).resolve().parents[1] / "fixtures" / "field"
CASE_FILES = sorted(FIELD.glob("*/*.json"))
KEYS = {"provider", "operation", "source", "payload", "expected", "why", "source_url"}
SOURCES = {"poll", "webhook", "callback", "sync"}
EMAIL = re.compile(r"[\w.+-]+@[\w-]+\.[\w.]+")
MINIMUM_CASES = 30


def _load(path: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return loaded


def _ids() -> list[str]:
    return [f"{path.parent.name}/{path.stem}" for path in CASE_FILES]


def test_the_corpus_is_present_and_covers_every_provider() -> None:
    assert len(CASE_FILES) >= MINIMUM_CASES, f"only {len(CASE_FILES)} field cases in {FIELD}"
    providers = {path.parent.name for path in CASE_FILES}
    assert providers == set(PROVIDER_NAMES), set(PROVIDER_NAMES) ^ providers


def test_the_corpus_has_every_outcome_and_a_delivered_result_per_provider() -> None:
    by_outcome: dict[str, set[str]] = {}
    for path in CASE_FILES:
        case = _load(path)
        by_outcome.setdefault(case["expected"], set()).add(case["provider"])
    assert set(by_outcome) == {outcome.value for outcome in Outcome}
    assert len(by_outcome["succeeded"]) == len(PROVIDER_NAMES)


@pytest.mark.parametrize("path", CASE_FILES, ids=_ids())
def test_field_case_has_the_fixture_form_and_a_source(path: Path) -> None:
    case = _load(path)
    assert set(case) == KEYS, set(case) ^ KEYS
    assert case["provider"] == path.parent.name
    assert path.stem.startswith(case["provider"] + "-")
    assert case["operation"] in OPERATIONS
    assert case["source"] in SOURCES
    assert case["expected"] in {outcome.value for outcome in Outcome}
    assert isinstance(case["why"], str) and case["why"].strip() and "\n" not in case["why"]
    url = urlsplit(case["source_url"])
    assert url.scheme == "https" and url.hostname, case["source_url"]
    assert isinstance(case["payload"], dict) and case["payload"]
    assert not EMAIL.search(json.dumps(case["payload"])), "replace e-mail addresses"


@pytest.mark.parametrize("path", CASE_FILES, ids=_ids())
def test_field_case_classifies_as_expected(path: Path) -> None:
    case = _load(path)
    result = classify(case["provider"], case["payload"], case["operation"])
    assert result.outcome is Outcome(case["expected"]), f"{case['why']} / got: {result.reason}"
    assert result.reason and "\n" not in result.reason

"""Which ledger backends a test runs on.

The ``ledger_url`` fixture (``tests/integration/conftest.py``) runs a test on SQLite and on
PostgreSQL. A test whose subject is not the ledger (an HTTP client's retries, a provider's
quirks) gains nothing from the second run: ``ONE_BACKEND`` keeps it on SQLite, while the
ledger's own behaviour stays covered on both by ``test_ledger_contract`` and its peers.
"""

from __future__ import annotations

import pytest

__all__ = ["ONE_BACKEND"]

ONE_BACKEND = pytest.mark.parametrize("ledger_url", ["sqlite"], indirect=True)

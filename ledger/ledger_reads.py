"""The ledger's reads: balances and funds, credit lots, generations, outcome reports and
refund latencies (``Ledger`` inherits them; each opens its own read transaction)."""

from __future__ import annotations

from ledger.backends import Database, Row, Tx
from ledger.clock import now_ms
from ledger.funds import Funds, read_funds
from ledger.generations import Generation

__all__ = ["LedgerReads"]


class LedgerReads:
    """Reads over ``self.db``."""

    db: Database

    def balance(self, account_id: str) -> int:
        """The account's balance in credits; 0 for an account never seen."""
        with self.db.read() as tx:
            return self._balance(tx, account_id)

    def funds(self, account_id: str) -> Funds:
        """The account's balance, held and available credits, and per credit kind
        (``ledger.funds``; zeros for an account never seen)."""
        with self.db.read() as tx:
            return read_funds(tx, account_id)

    def lots(self, account_id: str) -> list[Row]:
        """The account's credit lots (``credit_lots`` rows), oldest first."""
        with self.db.read() as tx:
            return tx.all("lots_of_account", account_id=account_id)

    def find_balance(self, account_id: str) -> int | None:
        """The account's balance in credits; None for an account never seen (a real zero
        is a balance of 0)."""
        with self.db.read() as tx:
            row = tx.one("account_balance", account_id=account_id)
        return None if row is None else int(row["balance"])

    def generation(self, generation_id: str) -> Generation | None:
        with self.db.read() as tx:
            row = tx.one("generation_by_id", generation_id=generation_id)
        return Generation.from_row(row) if row else None

    def generation_by_job(self, provider: str, provider_job_id: str) -> Generation | None:
        with self.db.read() as tx:
            row = tx.one(
                "generation_by_provider_job", provider=provider, provider_job_id=provider_job_id
            )
        return Generation.from_row(row) if row else None

    def claim_due_generations(
        self,
        *,
        lease_ms: int,
        default_poll_after_ms: int,
        limit: int = 200,
        at_ms: int | None = None,
    ) -> list[Generation]:
        """Unsettled generations due for a look; each is leased for ``lease_ms`` so that
        concurrent sweepers do not poll it twice. ``at_ms`` replaces the clock (tests)."""
        now = now_ms() if at_ms is None else at_ms
        with self.db.write() as tx:
            rows = tx.all(
                "claim_due_generations",
                now_ms=now,
                lease_ms=lease_ms,
                default_poll_after_ms=default_poll_after_ms,
                limit=limit,
            )
        return [Generation.from_row(r) for r in rows]

    def outcome_reports(self, generation_id: str) -> list[Row]:
        with self.db.read() as tx:
            return tx.all("outcome_reports_for", generation_id=generation_id)

    def refund_latencies_ms(self, since_ms: int = 0) -> list[int]:
        with self.db.read() as tx:
            rows = tx.all("refund_latencies_since", since_ms=since_ms)
        return [int(r["latency_ms"]) for r in rows]

    def _balance(self, tx: Tx, account_id: str) -> int:
        row = tx.one("account_balance", account_id=account_id)
        return int(row["balance"]) if row else 0

"""Dead letters: what could not be applied, with its reason, until an engineer handles it.

dramatiq keeps its own dead letters in Redis for 7 days and without the reason; these rows
outlive Redis and say why (``ClassName field=value …``). The message is stored redacted.
"""

from __future__ import annotations

from ledger.backends import Database, Row
from ledger.clock import now_ms
from ledger.inbox import settle_in
from ledger.redaction import redact_text

__all__ = ["DeadLetters"]


class DeadLetters:
    def __init__(self, db: Database) -> None:
        self.db = db

    # -- dead letters -----------------------------------------------------------------------

    def record(
        self,
        *,
        message_id: str,
        actor: str,
        queue: str,
        reason: str,
        error_class: str,
        message: str,
        inbox_id: str | None = None,
        permanent: bool = False,
    ) -> bool:
        """Keep a dead letter with its reason; both are redacted here, whatever the caller did.
        True when this call opened it (none was open for ``message_id``), False when it
        refreshed the reason of one still open (the inbox sweep sent its pending event again
        and it failed again): the caller alerts only for an opened one.

        A permanent failure also closes its inbox row (``dead``): no sweep can fix it. A
        transient one leaves the row pending, so the inbox sweep still applies it later; the
        dead letter is then marked resolved (``resolved_at_ms``) and no longer listed.
        """
        fields = {
            "message_id": message_id,
            "reason": redact_text(reason),
            "error_class": error_class,
            "message": redact_text(message),
        }
        with self.db.write() as tx:
            opened = bool(
                tx.all("open_dead_letter", actor=actor, queue=queue, now_ms=now_ms(), **fields)
            )
            if not opened:
                tx.all("refresh_open_dead_letter", **fields)
            if inbox_id is not None and permanent:
                settle_in(tx, inbox_id, state="dead", dead_reason=reason)
            if inbox_id is not None:  # applied meanwhile by another delivery: resolved now
                tx.all(
                    "resolve_dead_letter_if_applied",
                    message_id=message_id,
                    inbox_id=inbox_id,
                    now_ms=now_ms(),
                )
        return opened

    def get(self, message_id: str) -> Row | None:
        with self.db.read() as tx:
            return tx.one("dead_letter_by_message", message_id=message_id)

    def release(self, message_id: str, *, reopen: bool) -> str | None:
        """Remove a dead letter; with ``reopen``, its inbox event goes back to pending (to be
        enqueued again by the caller). Returns the inbox event's kind when it was reopened."""
        with self.db.write() as tx:
            tx.all("delete_dead_letter", message_id=message_id)
            if not reopen:
                return None
            tx.all("reopen_inbox", id=message_id, now_ms=now_ms())
            row = tx.one("inbox_by_id", id=message_id)
            return str(row["kind"]) if row and row["state"] == "pending" else None

    def all(self) -> list[Row]:
        """The dead letters not resolved, oldest first."""
        with self.db.read() as tx:
            return tx.all("dead_letters")

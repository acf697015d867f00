-- Events out (a transactional outbox): every ledger entry is also an outbox row, written by
-- a trigger in the entry's own transaction, so no way of writing an entry (one, a batch,
-- a kind added later) can leave its event out, and an effect rolled back leaves none.
-- `seq` numbers an account's events in the order they were committed (SQLite has one
-- writer at a time): the next event of an account is sent only once the previous one was
-- delivered or dead-lettered. The event itself is built from the entry, which never
-- changes, so every attempt sends the same body (`ledger.outbox`).
-- A migration that rebuilds `entries` must create the trigger again.
CREATE TABLE outbox (
    id                  INTEGER PRIMARY KEY AUTOINCREMENT,
    entry_id            INTEGER NOT NULL UNIQUE REFERENCES entries (id),
    account_id          TEXT NOT NULL,
    seq                 INTEGER,
    balance_after       INTEGER,
    state               TEXT NOT NULL DEFAULT 'pending'
        CHECK (state IN ('pending', 'delivered', 'dead', 'purged')),
    attempts            INTEGER NOT NULL DEFAULT 0,
    retries             INTEGER NOT NULL DEFAULT 0,
    next_attempt_at_ms  INTEGER NOT NULL,
    first_attempt_at_ms INTEGER,
    claimed_by          TEXT,
    claimed_until_ms    INTEGER,
    last_error          TEXT,
    delivered_at_ms     INTEGER,
    dead_at_ms          INTEGER,
    created_at_ms       INTEGER NOT NULL,
    UNIQUE (account_id, seq)
);
CREATE INDEX outbox_pending ON outbox (account_id, seq) WHERE state = 'pending';
CREATE INDEX outbox_dead ON outbox (dead_at_ms) WHERE state = 'dead';

INSERT INTO outbox (entry_id, account_id, seq, next_attempt_at_ms, created_at_ms)
SELECT id, account_id, ROW_NUMBER() OVER (PARTITION BY account_id ORDER BY id),
       created_at_ms, created_at_ms
FROM entries;

CREATE TRIGGER entries_outbox AFTER INSERT ON entries
BEGIN
    INSERT INTO outbox (entry_id, account_id, seq, next_attempt_at_ms, created_at_ms)
    VALUES (NEW.id, NEW.account_id,
            (SELECT COALESCE(MAX(seq), 0) + 1 FROM outbox WHERE account_id = NEW.account_id),
            NEW.created_at_ms, NEW.created_at_ms);
END;

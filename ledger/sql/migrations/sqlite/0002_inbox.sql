-- The durable inbox: every reported result is written here before it is enqueued, and
-- marked processed in the same transaction as its effect. The broker is a fast path; a
-- sweep re-enqueues rows that stayed unprocessed past a grace period.
CREATE TABLE inbox (
    id              TEXT PRIMARY KEY,
    kind            TEXT NOT NULL,
    provider        TEXT NOT NULL,
    generation_id   TEXT,
    operation       TEXT,
    payload         TEXT NOT NULL,
    received_at_ms  INTEGER NOT NULL,
    enqueued_at_ms  INTEGER NOT NULL,
    enqueue_count   INTEGER NOT NULL DEFAULT 1,
    state           TEXT NOT NULL DEFAULT 'pending'
        CHECK (state IN ('pending', 'processed', 'dead')),
    settled_at_ms   INTEGER,
    dead_reason     TEXT
);
CREATE INDEX inbox_pending ON inbox (enqueued_at_ms) WHERE state = 'pending';

-- The HTTP API's idempotency keys (Stripe's semantics): the first answer given under a key,
-- kept at least 24 hours so that a retry with the same body gets it again. Scoped per API
-- key by the key's SHA-256 (never the key itself). While its request is being answered a
-- row is 'in_flight' under a random attempt id; the fingerprint is the SHA-256 of the
-- method, the path and the body as parsed, so the same key with another request is refused.
CREATE TABLE api_idempotency_keys (
    scope           TEXT NOT NULL,
    idempotency_key TEXT NOT NULL,
    fingerprint     TEXT NOT NULL,
    state           TEXT NOT NULL CHECK (state IN ('in_flight', 'done')),
    attempt         TEXT NOT NULL,
    status          INTEGER,
    response        TEXT,
    created_at_ms   BIGINT NOT NULL,
    locked_at_ms    BIGINT NOT NULL,
    PRIMARY KEY (scope, idempotency_key),
    CHECK ((state = 'done') = (status IS NOT NULL AND response IS NOT NULL))
);
CREATE INDEX api_idempotency_keys_created ON api_idempotency_keys (created_at_ms);

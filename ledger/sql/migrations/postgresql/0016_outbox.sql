-- Events out (a transactional outbox): every ledger entry is also an outbox row, written by
-- a trigger in the entry's own transaction, so no way of writing an entry (one, a batch,
-- a kind added later) can leave its event out, and an effect rolled back leaves none.
-- `seq` numbers an account's events in the order they were committed: it is set when the
-- transaction commits (a deferred constraint trigger), with the accounts concerned locked
-- in account order, so a transaction that drew a lower entry id but commits later still
-- gets the later number. Until then the row is invisible to every other transaction. The
-- next event of an account is sent only once the previous one was delivered or
-- dead-lettered. The event is built from the entry, which never changes, so every attempt
-- sends the same body (`ledger.outbox`).
CREATE TABLE outbox (
    id                  BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    entry_id            BIGINT NOT NULL UNIQUE REFERENCES entries (id),
    account_id          TEXT NOT NULL,
    seq                 BIGINT,
    balance_after       BIGINT,
    state               TEXT NOT NULL DEFAULT 'pending'
        CHECK (state IN ('pending', 'delivered', 'dead', 'purged')),
    attempts            INTEGER NOT NULL DEFAULT 0,
    retries             INTEGER NOT NULL DEFAULT 0,
    next_attempt_at_ms  BIGINT NOT NULL,
    first_attempt_at_ms BIGINT,
    claimed_by          TEXT,
    claimed_until_ms    BIGINT,
    last_error          TEXT,
    delivered_at_ms     BIGINT,
    dead_at_ms          BIGINT,
    created_at_ms       BIGINT NOT NULL,
    UNIQUE (account_id, seq)
);
CREATE INDEX outbox_pending ON outbox (account_id, seq) WHERE state = 'pending';
CREATE INDEX outbox_unsequenced ON outbox (account_id) WHERE seq IS NULL;
CREATE INDEX outbox_dead ON outbox (dead_at_ms) WHERE state = 'dead';

INSERT INTO outbox (entry_id, account_id, seq, next_attempt_at_ms, created_at_ms)
SELECT id, account_id, ROW_NUMBER() OVER (PARTITION BY account_id ORDER BY id),
       created_at_ms, created_at_ms
FROM entries;

CREATE FUNCTION outbox_record() RETURNS trigger LANGUAGE plpgsql
SET search_path FROM CURRENT AS $$
BEGIN
    INSERT INTO outbox (entry_id, account_id, next_attempt_at_ms, created_at_ms)
    VALUES (NEW.id, NEW.account_id, NEW.created_at_ms, NEW.created_at_ms);
    RETURN NULL;
END
$$;

CREATE TRIGGER entries_outbox AFTER INSERT ON entries
FOR EACH ROW EXECUTE FUNCTION outbox_record();

CREATE FUNCTION outbox_sequence() RETURNS trigger LANGUAGE plpgsql
SET search_path FROM CURRENT AS $$
DECLARE
    acct TEXT;
BEGIN
    FOR acct IN SELECT DISTINCT account_id FROM outbox WHERE seq IS NULL ORDER BY account_id
    LOOP
        PERFORM 1 FROM accounts WHERE account_id = acct FOR NO KEY UPDATE;
        UPDATE outbox SET seq = numbered.seq
        FROM (SELECT id,
                     (SELECT COALESCE(MAX(seq), 0) FROM outbox WHERE account_id = acct)
                     + ROW_NUMBER() OVER (ORDER BY id) AS seq
              FROM outbox WHERE account_id = acct AND seq IS NULL) AS numbered
        WHERE outbox.id = numbered.id;
    END LOOP;
    RETURN NULL;
END
$$;

CREATE CONSTRAINT TRIGGER outbox_sequenced AFTER INSERT ON outbox
DEFERRABLE INITIALLY DEFERRED
FOR EACH ROW EXECUTE FUNCTION outbox_sequence();

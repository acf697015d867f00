-- Credits are whole numbers (ledger/credits.py): BIGINT columns already hold nothing else;
-- each amount also gets the per-entry bound MAX_CREDITS = 10^12.
ALTER TABLE entries ADD CONSTRAINT entries_amount_range
    CHECK (amount BETWEEN -1000000000000 AND 1000000000000);
ALTER TABLE generations ADD CONSTRAINT generations_credits_range
    CHECK (credits BETWEEN 1 AND 1000000000000);

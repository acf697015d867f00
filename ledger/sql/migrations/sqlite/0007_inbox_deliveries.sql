-- Each event's delivery identity (the provider's event or webhook id; else its job id and
-- the outcome it reports): a redelivery is known before it is applied, and counted.
ALTER TABLE inbox ADD COLUMN delivery_key TEXT;
ALTER TABLE inbox ADD COLUMN deliveries INTEGER NOT NULL DEFAULT 1;
CREATE UNIQUE INDEX inbox_delivery ON inbox (provider, delivery_key)
    WHERE delivery_key IS NOT NULL;

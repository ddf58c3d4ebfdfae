ALTER TABLE events DETACH PARTITION events_2023 CONCURRENTLY;

ALTER TABLE events DETACH PARTITION events_2023 FINALIZE;

-- inside a transaction: the brief lock is left to lock_timeout
-- context: in-transaction
ALTER TABLE events DETACH PARTITION events_2023;

-- before PostgreSQL 14 there is no CONCURRENTLY
-- context: pg=13
ALTER TABLE events DETACH PARTITION events_2023;

DROP INDEX CONCURRENTLY orders_status_idx;

-- inside a transaction: the brief lock is left to lock_timeout
-- context: in-transaction
DROP INDEX orders_status_idx;

-- context: not-alone
DROP INDEX orders_status_idx;

-- CONCURRENTLY takes one index and no CASCADE
DROP INDEX orders_status_idx, orders_note_idx;

DROP INDEX orders_status_idx CASCADE;

-- an index of a partitioned table cannot be dropped concurrently
-- context: partitioned=events_created_at_idx
DROP INDEX events_created_at_idx;

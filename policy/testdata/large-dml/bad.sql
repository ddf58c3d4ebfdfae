-- no WHERE clause: every row
UPDATE orders SET currency = 'ZAR';

-- the seeds' backfill of a new column, in one statement
-- context: rows=3000000
UPDATE "JournalLine" SET "amountCents" = amount * 100 WHERE "amountCents" IS NULL;

-- a WHERE that does not depend on the row
DELETE FROM audit_log WHERE true;

-- the planner estimates 2.4M rows
-- context: rows=2400000 large=mymoolah_transactions
UPDATE mymoolah_transactions SET "updatedAt" = now() WHERE "createdAt" < '2024-01-01';

-- several constants at once
UPDATE public.payments p SET status = 'settled', "settledAt" = NULL;

-- rows computed from the row itself: batches by key range
UPDATE orders SET total = subtotal + tax;

-- UPDATE ... FROM without a WHERE joins everything
-- context: rows=500000
UPDATE accounts a SET balance = b.total FROM balances b WHERE a.id = b.account_id;

-- a data-modifying WITH query deletes every row too
WITH d AS (DELETE FROM audit_log RETURNING *) SELECT count(*) FROM d;

-- the planner estimates just over large_dml.max_rows
-- context: rows=100001
UPDATE transactions SET kind = 'card' WHERE kind IS NOT NULL;

-- the transaction already holds ACCESS EXCLUSIVE on the table (ALTER TABLE ... ADD COLUMN before it):
-- even a keyed UPDATE keeps every reader and writer waiting
-- context: in-transaction exclusive=accounts
UPDATE accounts SET tier = 'basic' WHERE id = 42;

-- EXPLAIN ANALYZE runs the statement
EXPLAIN ANALYZE UPDATE orders SET currency = 'ZAR';

-- PREPARE is judged when prepared: EXECUTE runs it later
PREPARE backfill (text) AS DELETE FROM audit_log WHERE $1 = $1;
;

-- MERGE into a table the transaction holds ACCESS EXCLUSIVE on
-- context: in-transaction exclusive=orders
MERGE INTO orders o USING refunds r ON o.id = r.order_id WHEN MATCHED THEN UPDATE SET status = 'refunded'
;

-- an equality that no unique index covers is no key, in a migration's session
-- context: migration unique-key=accounts:id rows=150000
UPDATE accounts SET status = 'archived' WHERE status = 'done';

-- context: migration rows=150000
DELETE FROM accounts WHERE status IN ('done', 'failed');

-- MERGE changes the rows its join matches
-- context: rows=150000
MERGE INTO accounts a USING imports i ON i.id = a.id WHEN MATCHED THEN UPDATE SET status = i.status;

-- MERGE that deletes every row it does not match
MERGE INTO accounts a USING imports i ON i.id = a.id WHEN NOT MATCHED BY SOURCE THEN DELETE;

-- an upsert from every row of a SELECT
INSERT INTO accounts (id, status) SELECT id, status FROM imports ON CONFLICT (id) DO UPDATE SET status = excluded.status;

-- COPY of an UPDATE runs it
COPY (UPDATE accounts SET status = 'archived' RETURNING id) TO STDOUT;

-- a data-modifying WITH query inside COPY
COPY (WITH d AS (DELETE FROM audit_log RETURNING *) SELECT count(*) FROM d) TO STDOUT;

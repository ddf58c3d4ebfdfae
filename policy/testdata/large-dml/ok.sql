-- ordinary application statements: a selective WHERE
UPDATE orders SET status = 'paid' WHERE id = 42;

DELETE FROM sessions WHERE "expiresAt" < now() AND "userId" = $1;

UPDATE "JournalLine" SET "amountCents" = $1 WHERE id = $2 RETURNING *;

-- one batch of the recipe
UPDATE orders SET currency = 'ZAR' WHERE ctid = ANY (ARRAY(SELECT ctid FROM orders WHERE currency IS DISTINCT FROM 'ZAR' LIMIT 10000));

-- the planner estimates few rows
-- context: rows=1200
UPDATE orders SET currency = 'ZAR' WHERE "createdAt" > now() - interval '1 day';

-- a table created in the same transaction
-- context: in-transaction created=refunds
UPDATE refunds SET status = 'new';

-- the catalog says the table is small
-- context: small=countries
DELETE FROM countries;

INSERT INTO orders (id, currency) VALUES (1, 'ZAR');

-- a data-modifying WITH query that picks its rows by key
WITH d AS (DELETE FROM audit_log WHERE id = 7 RETURNING *) SELECT count(*) FROM d;

-- reads through WITH queries are not parsed at all
WITH r AS (SELECT * FROM orders WHERE id = 1) SELECT * FROM r;

-- exactly large_dml.max_rows by the planner's estimate
-- context: rows=100000
UPDATE transactions SET kind = 'card' WHERE kind IS NOT NULL;

-- the exclusive lock is on another table
-- context: in-transaction exclusive=accounts
UPDATE orders SET currency = 'ZAR' WHERE id = 42;

-- EXPLAIN without ANALYZE does not run the statement
EXPLAIN UPDATE orders SET currency = 'ZAR';

-- ANALYZE false does not either
EXPLAIN (ANALYZE false, COSTS) DELETE FROM orders;

-- a prepared statement that picks its rows by key
PREPARE one (int) AS UPDATE orders SET currency = 'ZAR' WHERE id = $1;

-- no such table: the server answers 42P01
-- context: missing=no_such_table
DELETE FROM no_such_table;

-- a temporary table of the session
-- context: temp=scratch
UPDATE scratch SET note = NULL;

-- by a unique key, in a migration's session: not estimated
-- context: migration unique-key=accounts:id rows=150000
UPDATE accounts SET status = 'archived' WHERE id = 42;

-- an application's session keeps the fast path: an equality is not estimated
-- context: rows=150000
UPDATE accounts SET status = 'archived' WHERE status = 'done';

-- a MERGE that only inserts changes no existing row
MERGE INTO accounts a USING imports i ON i.id = a.id WHEN NOT MATCHED THEN INSERT (id, status) VALUES (i.id, i.status);

-- an upsert of VALUES changes as many rows as it lists
INSERT INTO accounts (id, status) VALUES (1, 'a'), (2, 'b') ON CONFLICT (id) DO UPDATE SET status = excluded.status;

-- an upsert from a SELECT of few rows
-- context: rows=40
INSERT INTO accounts (id, status) SELECT id, status FROM imports WHERE batch = 7 ON CONFLICT (id) DO UPDATE SET status = excluded.status;

-- COPY of a SELECT
COPY (SELECT * FROM accounts) TO STDOUT;

-- What node-postgres (-M extended: unnamed statements) and pgjdbc (-M
-- prepared: named ones) send for an ORM: quoted identifiers, casts,
-- SET LOCAL, savepoints, a sub-select, a window function, a data-modifying
-- CTE that only inserts, FOR UPDATE SKIP LOCKED.
\set aid random(1, 100000 * :scale - 5)
\set tid random(1, 10 * :scale)
BEGIN;
SET LOCAL statement_timeout = '5s';
SELECT "aid", "bid", "abalance" FROM "pgbench_accounts" WHERE "aid" = :aid LIMIT 1;
SAVEPOINT pgjdbc_autosave;
UPDATE "pgbench_accounts" SET "abalance" = "abalance" + 1 WHERE ("aid" = :aid AND 1=1) RETURNING "aid", "abalance";
RELEASE SAVEPOINT pgjdbc_autosave;
SELECT t."tid", t."tbalance" FROM "pgbench_tellers" t WHERE t."bid" IN (SELECT "bid" FROM "pgbench_tellers" WHERE "tid" = :tid) ORDER BY t."tid" LIMIT 5;
SELECT aid, abalance, rank() OVER (ORDER BY abalance DESC) FROM pgbench_accounts WHERE aid BETWEEN :aid AND :aid + 4;
SELECT aid FROM pgbench_accounts WHERE aid = :aid FOR UPDATE SKIP LOCKED;
WITH ins AS (INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES (:tid, 1, :aid, 1, now()) RETURNING aid) SELECT aid FROM ins;
COMMIT;

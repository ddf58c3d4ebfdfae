-- A read through a CTE, as query builders write it.
\set aid random(1, 100000 * :scale)
WITH r AS (SELECT aid, bid, abalance FROM pgbench_accounts WHERE aid = :aid) SELECT * FROM r;

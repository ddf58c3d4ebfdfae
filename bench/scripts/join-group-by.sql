-- A JOIN with GROUP BY over a small range of accounts.
\set aid random(1, 100000 * :scale - 10)
SELECT b.bid, count(*), sum(a.abalance) FROM pgbench_accounts a JOIN pgbench_branches b ON b.bid = a.bid WHERE a.aid BETWEEN :aid AND :aid + 9 GROUP BY b.bid ORDER BY b.bid;

-- without a catalog pgguard cannot tell whether a unique index exists
REFRESH MATERIALIZED VIEW daily_totals;

-- the catalog says there is no unique index
-- context: large=reporting."AccountBalances"
REFRESH MATERIALIZED VIEW reporting."AccountBalances";

-- a unique index and populated: rewritten, even inside a transaction (CONCURRENTLY is allowed there)
-- context: in-transaction unique-index=daily_totals populated=daily_totals
REFRESH MATERIALIZED VIEW daily_totals WITH DATA;

REFRESH MATERIALIZED VIEW CONCURRENTLY daily_totals;

-- WITH NO DATA only empties the view: no query runs
REFRESH MATERIALIZED VIEW daily_totals WITH NO DATA;

-- created in the same transaction: nobody reads it yet
-- context: in-transaction created=weekly_totals
REFRESH MATERIALIZED VIEW weekly_totals;

-- never populated (created WITH NO DATA): nobody can read it before this first refresh
-- context: unique-index=monthly_totals
REFRESH MATERIALIZED VIEW monthly_totals;

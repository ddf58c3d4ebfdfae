REINDEX INDEX CONCURRENTLY orders_customer_id_idx;

REINDEX (CONCURRENTLY, VERBOSE) TABLE "JournalLine";

REINDEX TABLE CONCURRENTLY public.payments;

-- a table created in the same transaction is empty
-- context: in-transaction created=refunds
REINDEX TABLE refunds;

-- the catalog says the table is small
-- context: small=countries
REINDEX TABLE countries;

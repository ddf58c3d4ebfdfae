-- rewritten: idle, alone, PostgreSQL 12+
REINDEX INDEX orders_customer_id_idx;

-- the ORM's camelCase names keep their quotes; options stay
REINDEX (VERBOSE) TABLE "JournalLine";

-- inside a sequelize migration transaction: refuse with the recipe
-- context: in-transaction
REINDEX TABLE mymoolah_transactions;

-- several statements in one query are one implicit transaction
-- context: not-alone
REINDEX INDEX "JournalLine_reference_key";

-- a whole schema, one table after the other
REINDEX SCHEMA billing;

-- system catalogs cannot be reindexed concurrently
REINDEX SYSTEM;

-- before PostgreSQL 12 there is no REINDEX CONCURRENTLY
-- context: pg=11
REINDEX INDEX orders_status_idx;

-- the catalog says the table is large
-- context: large=public.payments
REINDEX TABLE public.payments;

TRUNCATE orders;

TRUNCATE TABLE "JournalLine" RESTART IDENTITY CASCADE;

-- context: in-transaction created=tmp_import
TRUNCATE tmp_import, audit_log;

-- A big table that only has a ledger's name is someone's data.
-- context: large=migrations
TRUNCATE migrations;

-- A small table loses its rows as much as a big one (and the planner cannot
-- tell an empty table from one not yet analyzed): still refused.
-- context: small=currencies
TRUNCATE currencies;

-- Only the ledger is exempt, not what is truncated with it.
TRUNCATE schema_migrations, orders;

-- created in this transaction in another schema than the one the name finds
-- context: in-transaction created=other.accounts resolves=accounts:public
TRUNCATE accounts

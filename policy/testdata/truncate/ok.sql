-- context: in-transaction created=tmp_import
TRUNCATE tmp_import;

DELETE FROM audit_log WHERE ctid = ANY (ARRAY(SELECT ctid FROM audit_log LIMIT 10000));

-- golang-migrate records each version with TRUNCATE and INSERT on its ledger,
-- inside a transaction; a ledger the catalog cannot size is taken as small.
-- context: in-transaction
TRUNCATE "public"."schema_migrations";
-- context: in-transaction small=public.schema_migrations
TRUNCATE "public"."schema_migrations";

-- Every tool's default ledger (and lock) table.
TRUNCATE "SequelizeMeta";
TRUNCATE knex_migrations, knex_migrations_lock;
TRUNCATE migrations;
TRUNCATE pgmigrations;
TRUNCATE schema_migrations, ar_internal_metadata;
TRUNCATE django_migrations;
TRUNCATE flyway_schema_history;
TRUNCATE databasechangelog, databasechangeloglock;
TRUNCATE _prisma_migrations;

-- a temporary table of the session
-- context: temp=scratch
TRUNCATE scratch;
TRUNCATE pg_temp.scratch;

-- no such table: the server answers 42P01
-- context: missing=no_such_table
TRUNCATE no_such_table

-- rewritten: idle, alone, not partitioned
CREATE INDEX orders_customer_id_idx ON orders (customer_id);

-- the ORM's camelCase names keep their quotes
CREATE UNIQUE INDEX "JournalLine_reference_key" ON "JournalLine" USING btree ("reference") WHERE "deletedAt" IS NULL;

-- sequelize wraps migrations in a transaction: refuse with the recipe
-- context: in-transaction
CREATE INDEX mymoolah_transactions_created_at ON mymoolah_transactions ("createdAt");

-- several statements in one query are one implicit transaction
-- context: not-alone
CREATE INDEX ON orders (status);

-- partitioned tables cannot be indexed concurrently
-- context: partitioned=events
CREATE INDEX events_created_at_idx ON events (created_at);

-- an INVALID index of that name exists: IF NOT EXISTS would keep it
-- context: invalid-index=orders_status_idx
CREATE INDEX IF NOT EXISTS orders_status_idx ON orders (status);

-- the catalog says the table is large
-- context: large=public.payments
CREATE INDEX payments_status_idx ON public.payments (status);

-- annotation by a role that may not use it
-- context: user=app
-- pgguard:allow create-index reason="maintenance window"
CREATE INDEX orders_note_idx ON orders (note);

-- annotation by an allowed role: allowed, and recorded
-- context: user=fixture_admin
-- pgguard:allow create-index reason="maintenance window 2024-05-01"
CREATE INDEX orders_note_idx ON orders (note);

-- the fix in the terms of the migration tool behind the session (Context.Tool)
-- context: in-transaction tool=sequelize
CREATE INDEX big_account_idx ON big (account);
-- context: in-transaction tool=knex
CREATE INDEX big_account_idx ON big (account);
-- context: in-transaction tool=typeorm
CREATE INDEX big_account_idx ON big (account);
-- context: in-transaction tool=node-pg-migrate
CREATE INDEX big_account_idx ON big (account);
-- context: in-transaction tool=golang-migrate
CREATE INDEX big_account_idx ON big (account);
-- context: in-transaction tool=django
CREATE INDEX big_account_idx ON big (account);
-- context: in-transaction tool=rails
CREATE INDEX big_account_idx ON big (account);
-- context: in-transaction tool=flyway
CREATE INDEX big_account_idx ON big (account);
-- context: in-transaction tool=liquibase
CREATE INDEX big_account_idx ON big (account);
-- context: in-transaction tool=prisma
CREATE INDEX big_account_idx ON big (account);

ALTER TABLE orders ALTER COLUMN status SET NOT NULL;

ALTER TABLE "JournalLine" ALTER COLUMN "accountId" SET NOT NULL;

-- PostgreSQL 11 cannot use the CHECK constraint
-- context: pg=11 not-null-check=orders.status
ALTER TABLE orders ALTER COLUMN status SET NOT NULL;

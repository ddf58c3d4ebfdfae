-- A release's migration, run in UAT (10 accounts) through pgguard, whose uat
-- target borrows production's table sizes (sizes_from: production):
-- production holds 300,000 accounts, so UAT refuses what production would.
SELECT current_database(), count(*) AS accounts_here FROM accounts;

-- Rewritten: in production this index build would block writes.
CREATE INDEX accounts_email_idx ON accounts (email);

-- Refused: a type change rewrites the table; production's is large.
ALTER TABLE accounts ALTER COLUMN amount TYPE bigint;

-- Refused: a backfill of every row, more than 100,000 in production.
UPDATE accounts SET note = 'migrated';

ALTER TABLE orders DROP COLUMN note;

ALTER TABLE "JournalLine" DROP COLUMN IF EXISTS "legacyRef" CASCADE;

-- context: in-transaction
ALTER TABLE public.payments DROP COLUMN card_last4, DROP COLUMN card_brand;

-- annotation by a role that may not use it
-- context: user=app
-- pgguard:allow drop-column reason="unused since v42"
ALTER TABLE orders DROP COLUMN coupon;

-- annotation by an allowed role: allowed, and recorded
-- context: user=fixture_admin
-- pgguard:allow drop-column reason="unused since v42"
ALTER TABLE orders DROP COLUMN coupon;
;

-- the same annotation in a /* */ comment (what psql -f sends; it drops -- lines before a statement)
-- context: user=fixture_admin
/* pgguard:allow drop-column reason="unused since v42" */
ALTER TABLE orders DROP COLUMN coupon;

-- a /* */ annotation after the statement's code
-- context: user=fixture_admin tool=knex
ALTER TABLE orders DROP COLUMN coupon /* pgguard:allow drop-column reason="unused since v42" */

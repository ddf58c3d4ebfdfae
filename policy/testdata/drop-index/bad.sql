-- rewritten: idle, alone
DROP INDEX orders_status_idx;

DROP INDEX IF EXISTS "JournalLine_reference_key";

DROP INDEX public.payments_status_idx RESTRICT;

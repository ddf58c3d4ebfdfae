TRUNCATE orders;

TRUNCATE TABLE "JournalLine" RESTART IDENTITY CASCADE;

-- context: in-transaction created=tmp_import
TRUNCATE tmp_import, audit_log;

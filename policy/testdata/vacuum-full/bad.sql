VACUUM FULL orders;

VACUUM (FULL, ANALYZE, VERBOSE) "JournalLine";

VACUUM (FULL true) public.payments, refunds;

-- every table of the database
VACUUM FULL;

-- context: large=mymoolah_transactions
VACUUM FULL mymoolah_transactions;

VACUUM orders;

VACUUM (ANALYZE, VERBOSE) "JournalLine";

VACUUM (FULL false) orders;

VACUUM (FULL off, ANALYZE) orders;

ANALYZE orders;

-- context: small=countries
VACUUM FULL countries;

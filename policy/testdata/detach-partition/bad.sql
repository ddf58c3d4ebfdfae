-- rewritten: idle, alone, PostgreSQL 14+
ALTER TABLE events DETACH PARTITION events_2023;

ALTER TABLE "JournalLine" DETACH PARTITION "JournalLine_2022" -- archived
;

ALTER TABLE users ADD CONSTRAINT users_email_key UNIQUE (email);

ALTER TABLE "JournalLine" ADD UNIQUE ("journalId", "lineNo");

ALTER TABLE "User" ADD COLUMN "externalId" text UNIQUE;

-- context: partitioned=events
ALTER TABLE events ADD CONSTRAINT events_uid_key UNIQUE (uid, created_at);

ALTER TABLE users ADD CONSTRAINT users_email_key UNIQUE NULLS NOT DISTINCT (email) INCLUDE (name) DEFERRABLE INITIALLY DEFERRED;

ALTER TABLE audit_log ADD CONSTRAINT audit_log_pkey PRIMARY KEY USING INDEX audit_log_pkey;

CREATE TABLE "Account" (id bigint PRIMARY KEY, name text);

-- context: created=audit_log
ALTER TABLE audit_log ADD PRIMARY KEY (id);

-- context: small="JournalLine"
ALTER TABLE "JournalLine" ADD PRIMARY KEY ("journalId", "lineNo");

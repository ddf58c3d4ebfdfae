ALTER TABLE audit_log ADD PRIMARY KEY (id);

ALTER TABLE "JournalLine" ADD CONSTRAINT "JournalLine_pkey" PRIMARY KEY ("journalId", "lineNo");

-- context: pg=11
ALTER TABLE audit_log ADD CONSTRAINT audit_log_pkey PRIMARY KEY (id);

ALTER TABLE public."Event" ADD PRIMARY KEY (id) INCLUDE ("createdAt");

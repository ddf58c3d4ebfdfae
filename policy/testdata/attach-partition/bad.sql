ALTER TABLE events ATTACH PARTITION events_2024 FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');

-- context: partition-key=events:range:created_at
ALTER TABLE events ATTACH PARTITION events_2024 FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');

-- context: partition-key="JournalLine":list:region
ALTER TABLE "JournalLine" ATTACH PARTITION "JournalLine_eu" FOR VALUES IN ('eu', 'uk');

-- context: partition-key=events:range:created_at
ALTER TABLE events ATTACH PARTITION events_old FOR VALUES FROM (MINVALUE) TO ('2020-01-01');

-- context: partition-key=events:hash:id
ALTER TABLE events ATTACH PARTITION events_h0 FOR VALUES WITH (MODULUS 4, REMAINDER 0);

-- context: pg=11
ALTER TABLE events ATTACH PARTITION events_other DEFAULT;

CREATE TABLE events (id bigserial PRIMARY KEY, happened_at timestamp NOT NULL, "createdAt" TIMESTAMP WITHOUT TIME ZONE);

-- context: in-transaction created=refunds
ALTER TABLE refunds ADD COLUMN "refundedAt" timestamp(3);

CREATE TABLE webhooks (id bigserial PRIMARY KEY, payload jsonb NOT NULL);

-- context: in-transaction created=refunds
ALTER TABLE refunds ADD COLUMN metadata jsonb;

CREATE TABLE webhooks (id bigserial PRIMARY KEY, payload json NOT NULL);

-- context: in-transaction created=refunds
ALTER TABLE refunds ADD COLUMN metadata JSON;

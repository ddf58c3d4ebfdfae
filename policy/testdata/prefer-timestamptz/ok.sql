-- sequelize's DATE is TIMESTAMP WITH TIME ZONE
CREATE TABLE events (id bigserial PRIMARY KEY, happened_at timestamptz NOT NULL, "createdAt" TIMESTAMP WITH TIME ZONE, day date);

-- context: in-transaction created=refunds
ALTER TABLE refunds ADD COLUMN "refundedAt" timestamptz;

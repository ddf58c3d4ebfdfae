ALTER TABLE orders ADD COLUMN status text NOT NULL DEFAULT 'new';

ALTER TABLE "JournalLine" ADD COLUMN "postedAt" timestamptz;

ALTER TABLE "JournalLine" ADD COLUMN "createdAt" timestamptz NOT NULL DEFAULT now();

-- context: created=refunds
ALTER TABLE refunds ADD COLUMN reason text NOT NULL;

CREATE TABLE "Payment" (id bigint PRIMARY KEY, "method" text NOT NULL);

ALTER TABLE orders ALTER COLUMN status SET DEFAULT 'new';

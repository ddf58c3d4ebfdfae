ALTER TABLE mymoolah_transactions ADD COLUMN fee_amount numeric(18,2);

ALTER TABLE orders ADD COLUMN source varchar(20) NOT NULL DEFAULT 'api';

ALTER TABLE orders ADD COLUMN "createdAt" timestamptz NOT NULL DEFAULT now();

ALTER TABLE orders ADD COLUMN "updatedAt" timestamp with time zone DEFAULT CURRENT_TIMESTAMP;

ALTER TABLE orders ADD COLUMN refund_reason text DEFAULT NULL;

ALTER TABLE orders ADD COLUMN flags jsonb DEFAULT '{}'::jsonb;

-- context: created=refunds
ALTER TABLE refunds ADD COLUMN token uuid DEFAULT gen_random_uuid();

-- context: small=countries
ALTER TABLE countries ADD COLUMN token uuid DEFAULT gen_random_uuid();

-- context: function=app_default_status:s
ALTER TABLE orders ADD COLUMN status text DEFAULT app_default_status();

ALTER TABLE orders ALTER COLUMN token SET DEFAULT gen_random_uuid();

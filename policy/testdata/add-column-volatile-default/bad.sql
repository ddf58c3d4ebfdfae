ALTER TABLE orders ADD COLUMN token uuid DEFAULT gen_random_uuid();

ALTER TABLE "JournalLine" ADD COLUMN "postedAt" timestamptz NOT NULL DEFAULT clock_timestamp();

ALTER TABLE orders ADD COLUMN jitter double precision DEFAULT random() * 10;

ALTER TABLE orders ADD COLUMN seq bigint DEFAULT nextval('orders_seq_seq');

-- unknown functions are assumed volatile
ALTER TABLE orders ADD COLUMN code text DEFAULT make_code();

-- context: function=make_code:v
ALTER TABLE orders ADD COLUMN code text DEFAULT make_code();

-- before PostgreSQL 11 any default rewrites the table
-- context: pg=10
ALTER TABLE orders ADD COLUMN source varchar(20) NOT NULL DEFAULT 'api';

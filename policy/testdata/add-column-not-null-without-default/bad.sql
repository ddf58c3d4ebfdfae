ALTER TABLE orders ADD COLUMN status text NOT NULL;

ALTER TABLE "JournalLine" ADD COLUMN "postedAt" timestamptz NOT NULL;

-- an explicit NULL default is no default
ALTER TABLE "JournalLine" ADD COLUMN "memo" text DEFAULT NULL NOT NULL;

-- context: pg=10
ALTER TABLE orders ADD COLUMN channel text NOT NULL;

-- context: small=orders
ALTER TABLE orders ADD COLUMN region text NOT NULL;

ALTER TABLE orders ALTER COLUMN customer_id TYPE bigint;

ALTER TABLE "JournalLine" ALTER COLUMN "amount" TYPE numeric(20,4) USING "amount"::numeric(20,4);

-- context: column-type=orders.total:numeric(10,2)
ALTER TABLE orders ALTER COLUMN total TYPE numeric(12,3);

-- context: column-type=orders.status:text
ALTER TABLE orders ALTER COLUMN status SET DATA TYPE varchar(20);

-- context: column-type="JournalLine".postedAt:timestamp
ALTER TABLE "JournalLine" ALTER COLUMN "postedAt" TYPE timestamptz;

-- context: pg=11 column-type=orders.created_at:timestamp
ALTER TABLE orders ALTER COLUMN created_at TYPE timestamptz;

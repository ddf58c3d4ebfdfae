CREATE TABLE orders (
  id bigserial PRIMARY KEY,
  customer_id bigint REFERENCES customers (id),
  amount numeric(18,2) CHECK (amount >= 0),
  reference text UNIQUE
);

-- context: in-transaction
ALTER TABLE "JournalLine" ADD CHECK ("amountCents" > 0) NOT VALID;

-- context: in-transaction
ALTER TABLE "JournalLine" ADD FOREIGN KEY ("journalId") REFERENCES "Journal" (id) NOT VALID;

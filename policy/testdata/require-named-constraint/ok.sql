CREATE TABLE orders (
  id bigserial PRIMARY KEY,
  customer_id bigint CONSTRAINT orders_customer_id_fkey REFERENCES customers (id),
  amount numeric(18,2) CONSTRAINT orders_amount_check CHECK (amount >= 0) NOT NULL DEFAULT 0
);

-- context: in-transaction
ALTER TABLE "JournalLine" ADD CONSTRAINT "JournalLine_amountCents_check" CHECK ("amountCents" > 0) NOT VALID;

ALTER TABLE orders ADD CONSTRAINT orders_customer_id_fkey FOREIGN KEY (customer_id) REFERENCES customers (id);

ALTER TABLE "JournalLine" ADD FOREIGN KEY ("accountId") REFERENCES "Account" (id) ON DELETE CASCADE;

-- a default fills the new column, so PostgreSQL checks every row
ALTER TABLE "JournalLine" ADD COLUMN "currencyId" bigint DEFAULT 1 REFERENCES "Currency" (id);

-- context: in-transaction large=orders
ALTER TABLE orders ADD FOREIGN KEY (customer_id, region) REFERENCES customers (id, region) MATCH FULL;

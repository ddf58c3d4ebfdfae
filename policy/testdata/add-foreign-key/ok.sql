ALTER TABLE orders ADD CONSTRAINT orders_customer_id_fkey FOREIGN KEY (customer_id) REFERENCES customers (id) NOT VALID;

ALTER TABLE orders VALIDATE CONSTRAINT orders_customer_id_fkey;

-- a new column without a default is NULL everywhere: nothing to check
ALTER TABLE "JournalLine" ADD COLUMN "accountId" bigint REFERENCES "Account" (id);

CREATE TABLE "Payment" (id bigint PRIMARY KEY, "orderId" bigint REFERENCES orders (id));

-- context: created=refunds
ALTER TABLE refunds ADD FOREIGN KEY (order_id) REFERENCES orders (id);

ALTER DOMAIN positive_amount ADD CONSTRAINT positive_amount_check CHECK (VALUE > 0);

ALTER DOMAIN public.positive_amount ADD CHECK (VALUE > 0 AND VALUE < 1000000);

ALTER DOMAIN positive_amount SET NOT NULL;

ALTER DOMAIN positive_amount VALIDATE CONSTRAINT positive_amount_check;

-- context: domain-column=positive_amount:orders.total domain-column=positive_amount:refunds.amount large=orders small=refunds
ALTER DOMAIN positive_amount ADD CONSTRAINT positive_amount_check CHECK (VALUE > 0);

-- context: domain-column=positive_amount:orders.total domain-column=positive_amount:orders.tax large=orders
ALTER DOMAIN positive_amount SET NOT NULL;

-- context: domain-column=positive_amount:"JournalLine"."Debit" large="JournalLine"
ALTER DOMAIN positive_amount VALIDATE CONSTRAINT positive_amount_check;

-- context: domain-column=positive_amount:orders.total
ALTER DOMAIN positive_amount ADD CONSTRAINT positive_amount_check CHECK (VALUE > 0);

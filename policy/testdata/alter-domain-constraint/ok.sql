ALTER DOMAIN positive_amount ADD CONSTRAINT positive_amount_check CHECK (VALUE > 0) NOT VALID;

ALTER DOMAIN positive_amount DROP CONSTRAINT positive_amount_check;

ALTER DOMAIN positive_amount DROP NOT NULL;

ALTER DOMAIN positive_amount SET DEFAULT 1;

ALTER DOMAIN positive_amount DROP DEFAULT;

ALTER DOMAIN positive_amount RENAME CONSTRAINT positive_amount_check TO positive_amount_positive;

ALTER DOMAIN positive_amount RENAME TO amount_positive;

-- context: domain-column=positive_amount:refunds.amount small=refunds
ALTER DOMAIN positive_amount ADD CONSTRAINT positive_amount_check CHECK (VALUE > 0);

-- context: domain-column=positive_amount:refunds.amount domain-column=positive_amount:"Payout".total small=refunds small="Payout"
ALTER DOMAIN positive_amount SET NOT NULL;

-- context: domain-column=positive_amount:refunds.amount created=refunds
ALTER DOMAIN positive_amount VALIDATE CONSTRAINT positive_amount_check;

-- context: domain-column=other:orders.total large=orders
ALTER DOMAIN positive_amount ADD CONSTRAINT positive_amount_check CHECK (VALUE > 0);

-- context: domain-column=positive_amount:orders.total large=orders domain-not-null=positive_amount
ALTER DOMAIN positive_amount SET NOT NULL;

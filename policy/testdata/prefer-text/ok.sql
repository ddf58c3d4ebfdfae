CREATE TABLE "Users" (id bigserial PRIMARY KEY, email text NOT NULL, "countryCode" text CHECK (char_length("countryCode") = 2));

-- context: in-transaction created=refunds
ALTER TABLE refunds ADD COLUMN reason varchar;

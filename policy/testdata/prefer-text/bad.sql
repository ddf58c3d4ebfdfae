-- sequelize's STRING is VARCHAR(255)
CREATE TABLE "Users" (id bigserial PRIMARY KEY, email VARCHAR(255) NOT NULL, "countryCode" CHAR(2));

-- context: in-transaction created=refunds
ALTER TABLE refunds ADD COLUMN reason character varying(100);

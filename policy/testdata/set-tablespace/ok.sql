CREATE TABLE audit_log (id bigint, entry text) TABLESPACE archive;

-- context: in-transaction created=audit_log
ALTER TABLE audit_log SET TABLESPACE fast_ssd;

-- context: small=countries
ALTER TABLE countries SET TABLESPACE fast_ssd;

SET default_tablespace = fast_ssd;

-- context: in-transaction created=tmp_import
TRUNCATE tmp_import;

DELETE FROM audit_log WHERE ctid = ANY (ARRAY(SELECT ctid FROM audit_log LIMIT 10000));

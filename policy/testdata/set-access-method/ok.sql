CREATE TABLE events_archive (id bigint, payload jsonb) USING columnar;

-- context: in-transaction created=events_archive
ALTER TABLE events_archive SET ACCESS METHOD heap;

-- context: small=countries
ALTER TABLE countries SET ACCESS METHOD columnar;

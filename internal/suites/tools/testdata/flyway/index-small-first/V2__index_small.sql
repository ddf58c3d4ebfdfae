-- The first statement of its transaction: pgjdbc sends BEGIN with it.
CREATE INDEX small_v_idx ON small (v);

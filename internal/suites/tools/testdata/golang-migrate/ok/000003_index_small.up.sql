CREATE INDEX small_v_idx ON small (v);

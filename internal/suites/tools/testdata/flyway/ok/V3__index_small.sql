ALTER TABLE small ADD COLUMN label text;
CREATE INDEX small_v_idx ON small (v);

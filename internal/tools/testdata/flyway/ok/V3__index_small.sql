-- Not the first statement of its transaction: see index-small-first.
ALTER TABLE small ADD COLUMN label text;
CREATE INDEX small_v_idx ON small (v);

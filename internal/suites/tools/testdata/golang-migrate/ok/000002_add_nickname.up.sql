ALTER TABLE big ADD COLUMN nickname text;

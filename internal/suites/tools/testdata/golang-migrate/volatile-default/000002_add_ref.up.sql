ALTER TABLE big ADD COLUMN ref uuid DEFAULT gen_random_uuid();

package enforce

import "testing"

// The statements a migration's look ahead walks past (their execution
// leaves the catalog's answers for the later statements of the batch as
// they were, but for what they add) and those it stops at.
func TestRunsAhead(t *testing.T) {
	for q, want := range map[string]bool{
		"SELECT 1":                                                    true,
		"INSERT INTO t VALUES (1)":                                    true,
		"UPDATE t SET v = 1 WHERE id = 1":                             true,
		"WITH d AS (DELETE FROM t RETURNING *) SELECT 1":              true,
		"CREATE TABLE n (id int)":                                     true,
		"CREATE INDEX n_i ON n (id)":                                  true,
		"ALTER TABLE t ADD COLUMN c int DEFAULT 0":                    true,
		"ALTER TABLE t ADD CONSTRAINT c CHECK (v > 0)":                true,
		"COMMENT ON TABLE t IS 'x'":                                   true,
		"SELECT set_config('search_path', 'x', false)":                false,
		"SET search_path = x":                                         false,
		"SET ROLE app":                                                false,
		"BEGIN":                                                       false,
		"ALTER TABLE t RENAME TO u":                                   false,
		"ALTER TABLE t ENABLE TRIGGER tr":                             false,
		"ALTER TABLE t DISABLE RULE r":                                false,
		"ALTER TABLE p ATTACH PARTITION c FOR VALUES FROM (1) TO (2)": false,
		"CREATE TRIGGER tr AFTER INSERT ON t FOR EACH ROW EXECUTE FUNCTION f()": false,
		"CREATE RULE r AS ON INSERT TO t DO ALSO NOTHING":                       false,
		"CREATE OR REPLACE FUNCTION f() RETURNS int LANGUAGE sql AS 'SELECT 1'": false,
		"CREATE TABLE c PARTITION OF p FOR VALUES FROM (1) TO (2)":              false,
		"CREATE TABLE c () INHERITS (p)":                                        false,
		"DROP TABLE t":                                                          false,
		"CREATE INDEX CONCURRENTLY n_i ON n (id)":                               false,
		"DO $$BEGIN NULL; END$$":                                                false,
		"CALL p()":                                                              false,
	} {
		if got := runsAhead(q); got != want {
			t.Errorf("%s: runsAhead %v, want %v", q, got, want)
		}
	}
}

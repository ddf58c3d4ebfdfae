package tools

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// psqlFile runs psql -f on an SQL file holding sql, through pgguard.
func psqlFile(t *testing.T, db, sql string) result {
	t.Helper()
	psql := lookPath(t, "psql", "apt-get install postgresql-client")
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "migration.sql"), []byte(sql), 0o644); err != nil {
		t.Fatal(err)
	}
	return runTool(t, dir, baseEnv(), psql, "-X", "-v", "ON_ERROR_STOP=1", "-f", "migration.sql", url(db))
}

// TestPsqlAnnotation: psql -f drops the "--" comment lines before a
// statement, so a "-- pgguard:allow" line never reaches pgguard; the same
// annotation in a /* */ comment does, and the refusal psql shows gives
// the annotation in that form. The suite's pgguard lets no role use
// annotations: that the annotation reached it shows in the detail ("was
// ignored: role ... is not in annotations.allowed_roles").
func TestPsqlAnnotation(t *testing.T) {
	t.Parallel()
	const ignored = "annotation was ignored"
	for _, c := range []struct {
		name, sql string
		reaches   bool
	}{
		{"line comment", "-- pgguard:allow drop-column reason=\"note unused since v42\"\nALTER TABLE big DROP COLUMN note;\n", false},
		{"block comment", "/* pgguard:allow drop-column reason=\"note unused since v42\" */\nALTER TABLE big DROP COLUMN note;\n", true},
		{"block comment after the code", "ALTER TABLE big DROP COLUMN note /* pgguard:allow drop-column reason=\"note unused since v42\" */;\n", true},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			db := database(t, "psql")
			r := psqlFile(t, db, c.sql)
			t.Logf("%s", r)
			if r.code == 0 || !strings.Contains(r.out, "pgguard: drop-column:") {
				t.Fatalf("pgguard did not refuse the DROP COLUMN of a role not allowed to annotate: %s", r)
			}
			if got := strings.Contains(r.out, ignored); got != c.reaches {
				t.Errorf("the annotation reached pgguard: %v, want %v: %s", got, c.reaches, r)
			}
			if !strings.Contains(r.out, `/* pgguard:allow drop-column reason="note unused since <release>" */`) {
				t.Errorf("the refusal does not show the annotation in the form that survives psql: %s", r)
			}
			if strings.Contains(r.out, "-- pgguard:allow") {
				t.Errorf("the refusal shows a -- annotation, which psql drops: %s", r)
			}
			if got := column(t, direct(t, db), "SELECT count(*)::text FROM pg_attribute WHERE attrelid = 'big'::regclass AND attname = 'note'"); len(got) != 1 || got[0] != "1" {
				t.Errorf("big.note is gone: %v", got)
			}
		})
	}
}

package tools

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pgguard/pgguard/internal/testkit/pgtest"
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

// TestPsqlSmallUATJudgedWithProductionSizes: a release's migration run by
// psql -f on a UAT copy where big holds 10 rows. Through the target that
// judges with production's sizes (the template's, big with 300,000 rows:
// guardtest's UATAddr) it is refused as on production, saying the size is
// production's, and nothing of it is left; through the plain target the
// same migration on the same small database passes.
func TestPsqlSmallUATJudgedWithProductionSizes(t *testing.T) {
	t.Parallel()
	const migration = "CREATE INDEX big_account_idx ON big (account);\nALTER TABLE big ALTER COLUMN account TYPE bigint;\n"
	psql := lookPath(t, "psql", "apt-get install postgresql-client")
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "migration.sql"), []byte(migration), 0o644); err != nil {
		t.Fatal(err)
	}
	run := func(addr, db string) result {
		u := fmt.Sprintf("postgres://%s:%s@%s/%s?sslmode=disable", pgtest.SuperUser, pgtest.Password, addr, db)
		return runTool(t, dir, baseEnv(), psql, "-X", "-v", "ON_ERROR_STOP=1", "-f", "migration.sql", u)
	}
	needPG(t)
	uat := guard.CloneSmall(t, fmt.Sprintf("t_psql_uat_%d", dbSeq.Add(1)))
	r := run(guard.UATAddr, uat)
	t.Logf("%s", r)
	if r.code == 0 || !strings.Contains(r.out, "pgguard: alter-column-type:") || !strings.Contains(r.out, "rows in") || !strings.Contains(r.out, "in production (sizes as of ") {
		t.Fatalf("the UAT target let the type change of big through, or did not say the size is production's: %s", r)
	}
	if !strings.Contains(r.out, "rewritten to run without blocking writes: CREATE INDEX CONCURRENTLY") {
		t.Errorf("the UAT target did not rewrite the CREATE INDEX as production's size requires: %s", r)
	}
	if got := column(t, direct(t, uat), "SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = 'big'::regclass AND attname = 'account'"); len(got) != 1 || got[0] != "integer" {
		t.Errorf("big.account changed in UAT: %v", got)
	}
	own := guard.CloneSmall(t, fmt.Sprintf("t_psql_uat_%d", dbSeq.Add(1)))
	if r := run(proxyAddr, own); r.code != 0 {
		t.Errorf("judged with its own 10 rows, the migration should pass: %s", r)
	}
}

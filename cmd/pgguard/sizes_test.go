package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pgguard/pgguard/internal/pgcatalog"
	"github.com/pgguard/pgguard/internal/testkit/pgtest"
)

// sizesDatabase creates a database owned by the SCRAM role, fills it with
// sql and returns its name.
func sizesDatabase(t *testing.T, pg *pgtest.Server, name string, sql ...string) string {
	t.Helper()
	db, err := pg.CreateDatabase(name)
	if err != nil {
		t.Fatal(err)
	}
	if err := pg.Exec("ALTER DATABASE " + name + " OWNER TO " + pgtest.SCRAMUser); err != nil {
		t.Fatal(err)
	}
	if len(sql) > 0 {
		if err := pg.ExecAs(pgtest.SCRAMUser, db, sql...); err != nil {
			t.Fatal(err)
		}
	}
	return db
}

// exportSizes runs pgguard sizes export on db as the SCRAM role (its
// password from PGPASSWORD) and returns the file's path.
func exportSizes(t *testing.T, pg *pgtest.Server, db string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), db+"-sizes.json")
	t.Setenv("PGPASSWORD", pgtest.Password)
	code, _, errOut := runCmd(t, "", "sizes", "export", "--upstream", pg.Addr(), "--user", pgtest.SCRAMUser, "--database", db, "--output", path)
	if code != 0 {
		t.Fatalf("sizes export: exit %d: %s", code, errOut)
	}
	return path
}

// TestSizesExportThenLint exports a database's sizes with the command and
// lints with them: the tables it lists are judged with their size there
// (a small one passes, a large one is refused saying where its size came
// from), a table it does not list is assumed large as without --sizes.
func TestSizesExportThenLint(t *testing.T) {
	pg := pgtest.Must(t, pgtest.Options{})
	db := sizesDatabase(t, pg, "production",
		"CREATE TABLE big (id int, v int)",
		"INSERT INTO big SELECT g, g FROM generate_series(1, 150000) g",
		"CREATE TABLE small (id int, v int)",
		"INSERT INTO small SELECT g, g FROM generate_series(1, 5) g",
		"ANALYZE")
	path := exportSizes(t, pg, db)
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var f pgcatalog.SizeFile
	if err := json.Unmarshal(raw, &f); err != nil || f.Format != pgcatalog.SizesFormat || f.Database != "production" || f.ServerVersion == "" || f.ExportedAt.IsZero() {
		t.Fatalf("file: %v %+v", err, f)
	}
	// No row data: the values inserted never appear.
	if strings.Contains(string(raw), "149999") {
		t.Errorf("the file holds a value of a row")
	}
	migration := filepath.Join(t.TempDir(), "m.sql")
	sql := "CREATE INDEX big_v ON big (v);\nCREATE INDEX small_v ON small (v);\nCREATE INDEX other_v ON other (v);\nUPDATE big SET v = 0;\nUPDATE small SET v = 0;\n"
	if err := os.WriteFile(migration, []byte(sql), 0o600); err != nil {
		t.Fatal(err)
	}
	lines := func(out string) map[string]lintFinding {
		m := map[string]lintFinding{}
		for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
			var fi lintFinding
			if l == "" {
				continue
			}
			if err := json.Unmarshal([]byte(l), &fi); err != nil {
				t.Fatalf("%q: %v", l, err)
			}
			m[fi.Table+"@"+fi.Rule] = fi
		}
		return m
	}
	_, out, _ := runCmd(t, "", "lint", "--format", "json", migration)
	without := lines(out)
	_, out, errOut := runCmd(t, "", "lint", "--format", "json", "--sizes", path, migration)
	with := lines(out)
	for _, k := range []string{"big@create-index", "small@create-index", "other@create-index", "big@large-dml", "small@large-dml"} {
		if _, ok := without[k]; !ok {
			t.Errorf("without --sizes: no %s", k)
		}
	}
	if len(with) != 3 {
		t.Errorf("with --sizes: %d findings, want 3: %v (%s)", len(with), with, errOut)
	}
	if fi, ok := with["big@create-index"]; !ok || !strings.Contains(fi.Detail, "in production (sizes as of ") {
		t.Errorf("with --sizes, big: %+v", fi)
	}
	if _, ok := with["other@create-index"]; !ok {
		t.Errorf("with --sizes, a table the file lacks is no longer assumed large")
	}
	if fi, ok := with["big@large-dml"]; !ok || fi.Action != "reject" {
		t.Errorf("with --sizes, UPDATE of every row of big: %+v", fi)
	}
	for _, k := range []string{"small@create-index", "small@large-dml"} {
		if _, ok := with[k]; ok {
			t.Errorf("with --sizes, %s: refused although small in production", k)
		}
	}
	if code, _, errOut := runCmd(t, "", "lint", "--sizes", filepath.Join(t.TempDir(), "nope.json"), migration); code != 2 || !strings.Contains(errOut, "--sizes") {
		t.Errorf("a missing sizes file: exit %d, %s", code, errOut)
	}
}

// TestSizesExportFromTarget: --rules and --target take the connection
// from a target's upstream and monitor: block, as serve's sizes_from does.
func TestSizesExportFromTarget(t *testing.T) {
	pg := pgtest.Must(t, pgtest.Options{})
	db := sizesDatabase(t, pg, "production", "CREATE TABLE t (id int)", "INSERT INTO t SELECT generate_series(1, 42)",
		"SELECT pg_catalog.pg_stat_force_next_flush()", "ANALYZE t")
	t.Setenv("PGGUARD_TEST_MONITOR_PASSWORD", pgtest.Password)
	t.Setenv("PGPASSWORD", "")
	rules := filepath.Join(t.TempDir(), "rules.yaml")
	body := fmt.Sprintf("proxy:\n  targets:\n    - {name: production, listen: 127.0.0.1:7001, upstream: %s, monitor: {user: %s, database: %s, password_env: PGGUARD_TEST_MONITOR_PASSWORD}}\n",
		pg.Addr(), pgtest.SCRAMUser, db)
	if err := os.WriteFile(rules, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runCmd(t, "", "sizes", "export", "--rules", rules, "--target", "production")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	f, err := pgcatalog.ReadSizeFile(strings.NewReader(out))
	if err != nil {
		t.Fatal(err)
	}
	if s, ok := pgcatalog.NewSizes(f, "production").TableSize("public", "t"); !ok || s.Rows != 42 || f.Database != db {
		t.Errorf("export: %+v %v (database %q)", s, ok, f.Database)
	}
	if code, _, errOut := runCmd(t, "", "sizes", "export", "--rules", rules, "--target", "staging"); code != 2 || !strings.Contains(errOut, `no target named "staging"`) {
		t.Errorf("an unknown target: exit %d, %s", code, errOut)
	}
}

package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pgguard/pgguard/internal/pgcatalog"
	"github.com/pgguard/pgguard/internal/testkit/pgtest"
	"github.com/pgguard/pgguard/policy"
)

// nameRig is production (30,000 rows), uat (10 rows, and without the
// tables listed in uatLacks) behind one pgguard: targets production (its
// own sizes, monitor: block), uat (sizes_from: production) and uat-file
// (sizes_file: an export of production). rename-table is off (the
// migration renames on purpose: the recipe of rename-table itself renames
// then keeps the old name with a view) and large_dml.max_rows is 1,000.
type nameRig struct {
	sessions map[string]*agreeSession
	sizes    *pgcatalog.Sizes
	eng      *policy.Engine
}

func startNameRig(t *testing.T, prodOnly []string, uatOnly ...string) *nameRig {
	t.Helper()
	prod := append(append([]string{}, borrowSchema...), prodOnly...)
	uat := append(append([]string{}, borrowSchema...), uatOnly...)
	return startRig(t, append(prod, borrowRows(30000)...), append(uat, borrowRows(10)...), pgtest.SCRAMUser)
}

// startRig is startNameRig with the databases' whole setup given, and
// the role production's monitor: block and the export connect as (a
// LOGIN role with the test's password, which startRig creates when it is
// not the SCRAM role).
func startRig(t *testing.T, prodSetup, uatSetup []string, monitor string) *nameRig {
	t.Helper()
	pg := pgtest.Must(t, pgtest.Options{})
	if monitor != pgtest.SCRAMUser {
		if err := pg.Exec("CREATE ROLE " + monitor + " LOGIN PASSWORD '" + pgtest.Password + "'"); err != nil {
			t.Fatal(err)
		}
	}
	sizesDatabase(t, pg, "production", prodSetup...)
	sizesDatabase(t, pg, "uat", uatSetup...)
	file := filepath.Join(t.TempDir(), "production-sizes.json")
	t.Setenv("PGPASSWORD", pgtest.Password)
	if code, _, errOut := runCmd(t, "", "sizes", "export", "--upstream", pg.Addr(), "--user", monitor, "--database", "production", "--output", file); code != 0 {
		t.Fatalf("sizes export: exit %d: %s", code, errOut)
	}
	addrs, _ := threeEnvironments(t, pg, "rules:\n  rename-table: off\nlarge_dml:\n  max_rows: 1000\n", monitor, file)
	r := &nameRig{sessions: map[string]*agreeSession{}}
	for name, addr := range addrs {
		db := "uat"
		if name == "production" {
			db = "production"
		}
		s := dialAgree(t, fmt.Sprintf("postgres://%s:%s@%s/%s?sslmode=disable", pgtest.SCRAMUser, pgtest.Password, addr, db))
		t.Cleanup(func() { s.conn.Close(context.Background()) })
		r.sessions[name] = s
	}
	sizes, err := pgcatalog.LoadSizes(file)
	if err != nil {
		t.Fatal(err)
	}
	r.sizes = sizes
	pcfg, err := policy.DefaultConfig()
	if err != nil {
		t.Fatal(err)
	}
	pcfg.Rules["rename-table"] = policy.LevelOff
	pcfg.LargeDML.MaxRows = 1000
	if r.eng, err = policy.NewEngine(pcfg); err != nil {
		t.Fatal(err)
	}
	return r
}

// verdict is verdictOf, but an earlier statement may draw a NOTICE from
// the server (CREATE TABLE IF NOT EXISTS of a table that exists), not one
// from pgguard.
func (r *nameRig) verdict(t *testing.T, s *agreeSession, c borrowCase) agreeVerdict {
	t.Helper()
	if len(c.earlier) == 0 {
		return s.verdict(t, agreeContext{inTransaction: c.inTx}, c.sql)
	}
	s.must(t, "BEGIN")
	for _, e := range c.earlier {
		err, notices := s.exec(t, e)
		if err != nil {
			t.Fatalf("%s: %v", e, err)
		}
		for _, n := range notices {
			if strings.HasPrefix(n.Message, "pgguard") {
				t.Fatalf("%s: %s", e, n.Message)
			}
		}
	}
	return s.verdict(t, agreeContext{}, c.sql)
}

// decide runs c on production, uat and uat-file and lints it with the
// export; it reports every target and lint that decides otherwise than
// production.
func (r *nameRig) decide(t *testing.T, c borrowCase) {
	t.Helper()
	got := map[string]string{}
	for _, name := range []string{"production", "uat", "uat-file"} {
		got[name] = r.verdict(t, r.sessions[name], c).key()
	}
	// lintWithSizes puts the earlier statements in the file, but outside
	// the transaction unless --in-transaction: wrap them.
	lc := c
	if len(c.earlier) > 0 {
		lc.earlier = append([]string{"BEGIN"}, c.earlier...)
		lc.sql = c.sql + ";\nCOMMIT"
	}
	lint := lintWithSizes(t, r.eng, r.sizes, lc).key()
	t.Logf("%s\n  production %s, uat %s, uat-file %s, lint --sizes %s", strings.Join(append(c.earlier, c.sql), "; "), got["production"], got["uat"], got["uat-file"], lint)
	if !strings.Contains(got["production"], c.rule+"@") {
		t.Fatalf("production: %s, want %s refusing", got["production"], c.rule)
	}
	for _, name := range []string{"uat", "uat-file"} {
		if got[name] != got["production"] {
			t.Errorf("%s decides %s, production %s", name, got[name], got["production"])
		}
	}
	if lint != got["production"] {
		t.Errorf("lint --sizes decides %s, production %s", lint, got["production"])
	}
}

// TestRedteamRenamedInMigration: the migration renames a table, then
// changes it under its new name (the rename-and-swap of a backfill, or
// rename-table's own recipe). Production's proxy judges the new name with
// production's own catalog, which sees the renamed table with its 30,000
// rows, and refuses. uat looks production's sizes up by the new name,
// which production's export does not have (the rename has not run there
// yet), so it judges uat's own 10 rows and allows. lint --sizes does not
// know the new name either and assumes it large (refuses).
//
// Fixed: pgguard remembers the renames it sees on a target (by the
// relation's OID) and looks a renamed table up in the source by its
// earlier names; lint --sizes follows the linted files' renames.
func TestRedteamRenamedInMigration(t *testing.T) {
	r := startNameRig(t, nil)
	for _, c := range []borrowCase{
		{rule: "large-dml", sql: "UPDATE accounts_old SET note = 'x'", earlier: []string{"ALTER TABLE accounts RENAME TO accounts_old"}},
		{rule: "alter-column-type", sql: "ALTER TABLE accounts_old ALTER COLUMN amount TYPE bigint", earlier: []string{"ALTER TABLE accounts RENAME TO accounts_old"}},
		{rule: "create-index", sql: "CREATE INDEX ledger_old_amount ON ledger_old (amount)", earlier: []string{"ALTER TABLE ledger RENAME TO ledger_old"}},
	} {
		r.decide(t, c)
	}
}

// TestRedteamCreateIfNotExistsInUATOnly: production has audit_log (30,000
// rows: created by hand, or by a hotfix, outside the migrations), uat does
// not. The release's idempotent migration runs CREATE TABLE IF NOT EXISTS
// audit_log, then backfills and indexes it in the same transaction. In uat
// the table is created by it, so it is new and small; in production the
// CREATE does nothing and production's proxy refuses the backfill and the
// index. uat allows what production refuses, though it borrows the sizes
// of a production that has the table; lint --sizes (which cannot tell
// whether IF NOT EXISTS creates anything, so does not count it as new)
// refuses as production does.
func TestRedteamCreateIfNotExistsInUATOnly(t *testing.T) {
	r := startNameRig(t, []string{
		"CREATE TABLE audit_log (id bigint, note text)",
		"INSERT INTO audit_log SELECT g, 'n' || g FROM generate_series(1, 30000) g",
	})
	create := "CREATE TABLE IF NOT EXISTS audit_log (id bigint, note text)"
	for _, c := range []borrowCase{
		{rule: "large-dml", sql: "UPDATE audit_log SET note = 'x'", earlier: []string{create}},
		{rule: "create-index", sql: "CREATE INDEX audit_log_note ON audit_log (note)", earlier: []string{create}},
		{rule: "add-primary-key", sql: "ALTER TABLE audit_log ADD PRIMARY KEY (id)", earlier: []string{create}},
	} {
		r.decide(t, c)
	}
}

// TestRedteamPartitionedOnlyInProduction: production's metrics is
// partitioned (its rows in partitions), uat's is a plain table (built from
// an older schema dump); production's logs is plain, uat's partitioned.
// CREATE INDEX outside a transaction: production's proxy refuses it on
// the partitioned metrics (it cannot be run CONCURRENTLY) and rewrites it
// on the plain logs; uat, judging with production's sizes but its own
// answer to "partitioned?", rewrites the one on metrics (which then
// builds in uat) and refuses the one on logs. The release's migration
// passes uat and is refused in production.
func TestRedteamPartitionedOnlyInProduction(t *testing.T) {
	r := startNameRig(t, []string{
		"CREATE TABLE metrics (at date NOT NULL, v int) PARTITION BY RANGE (at)",
		"CREATE TABLE metrics_2026 PARTITION OF metrics FOR VALUES FROM ('2026-01-01') TO ('2027-01-01')",
		"INSERT INTO metrics SELECT date '2026-01-01' + (g % 365), g FROM generate_series(1, 30000) g",
		"CREATE TABLE logs (at date NOT NULL, v int)",
		"INSERT INTO logs SELECT date '2026-01-01' + (g % 365), g FROM generate_series(1, 30000) g",
	},
		"CREATE TABLE metrics (at date NOT NULL, v int)",
		"INSERT INTO metrics SELECT date '2026-01-01' + (g % 365), g FROM generate_series(1, 10) g",
		"CREATE TABLE logs (at date NOT NULL, v int) PARTITION BY RANGE (at)",
		"CREATE TABLE logs_2026 PARTITION OF logs FOR VALUES FROM ('2026-01-01') TO ('2027-01-01')",
		"INSERT INTO logs SELECT date '2026-01-01' + (g % 365), g FROM generate_series(1, 10) g",
	)
	for _, c := range []borrowCase{
		{rule: "create-index", sql: "CREATE INDEX metrics_v ON metrics (v)"},
		{rule: "create-index", sql: "CREATE INDEX logs_v ON logs (v)"},
	} {
		r.decide(t, c)
	}
}

// TestRedteamSameNameInTwoProductionSchemas: production keeps the
// application's tables in schema app (the application role's search_path
// is app) and a copy of accounts, a few rows kept from a cleanup, in
// archive; uat has its tables in public. The monitor role is created as
// environments.md shows (CREATE ROLE pgguard_monitor LOGIN), so its
// search_path, which the export records, is the default: public.
// public.accounts is not in production; the recorded path finds nothing,
// and "the only schema that has a relation of that name" is two schemas:
// uat then judges accounts with its own 10 rows and allows what
// production's proxy (app.accounts, 30,000 rows) refuses. lint --sizes,
// which assumes an unresolved name large, refuses.
func TestRedteamSameNameInTwoProductionSchemas(t *testing.T) {
	prod := []string{"CREATE SCHEMA app", "SET search_path = app"}
	prod = append(prod, borrowSchema...)
	prod = append(prod, borrowRows(30000)...)
	prod = append(prod,
		"CREATE SCHEMA archive",
		"CREATE TABLE archive.accounts AS SELECT * FROM app.accounts LIMIT 5",
		"ANALYZE archive.accounts",
		"ALTER ROLE "+pgtest.SCRAMUser+" IN DATABASE production SET search_path = app")
	r := startRig(t, prod, append(append([]string{}, borrowSchema...), borrowRows(10)...), "pgguard_monitor")
	for _, c := range []borrowCase{
		{rule: "alter-column-type", inTx: true, sql: "ALTER TABLE accounts ALTER COLUMN amount TYPE bigint"},
		{rule: "large-dml", inTx: true, sql: "UPDATE accounts SET note = 'x'"},
	} {
		r.decide(t, c)
	}
}

// TestRedteamLintSetLocalOutsideTransaction: a migration file sets its
// search_path with SET LOCAL (written for a tool that wraps each file in
// a transaction) and is linted, and run, without one. PostgreSQL ignores
// SET LOCAL outside a transaction block (a WARNING): the next statement's
// accounts is public.accounts, 30,000 rows in production, whose proxy
// refuses the type change. lint --sizes takes the SET LOCAL as if it
// applied, resolves accounts in legacy (5 rows) and allows it.
func TestRedteamLintSetLocalOutsideTransaction(t *testing.T) {
	legacy := []string{"CREATE SCHEMA legacy", "CREATE TABLE legacy.accounts (LIKE public.accounts)",
		"INSERT INTO legacy.accounts SELECT * FROM public.accounts LIMIT 5", "ANALYZE legacy.accounts"}
	prod := append(append(append([]string{}, borrowSchema...), borrowRows(30000)...), legacy...)
	r := startRig(t, prod, append(append([]string{}, borrowSchema...), borrowRows(10)...), pgtest.SCRAMUser)
	set := "SET LOCAL search_path = legacy"
	c := borrowCase{sql: "ALTER TABLE accounts ALTER COLUMN amount TYPE bigint", earlier: []string{set}}
	s := r.sessions["production"]
	if err, _ := s.exec(t, set); err != nil {
		t.Fatal(err)
	}
	prodV := s.verdict(t, agreeContext{}, c.sql).key()
	lint := lintWithSizes(t, r.eng, r.sizes, c).key()
	t.Logf("production %s, lint --sizes %s", prodV, lint)
	if !strings.Contains(prodV, "alter-column-type@") {
		t.Fatalf("production: %s, want refused", prodV)
	}
	if lint != prodV {
		t.Errorf("lint --sizes decides %s, the proxy on production %s", lint, prodV)
	}
}

// TestRedteamLintSetConfigSearchPath: the migration file sets its
// search_path the way pg_dump's output and some tools do, with
// SELECT pg_catalog.set_config('search_path', 'app', false). The proxy
// resolves the names that follow by the server's search_path, which the
// call changed: app.accounts (30,000 rows), refused. lint --sizes reads
// only SET search_path, resolves accounts by the file's recorded path
// (public, where production keeps a 5-row legacy accounts) and allows.
func TestRedteamLintSetConfigSearchPath(t *testing.T) {
	file, s := productionWithLegacyAccounts(t)
	defer s.conn.Close(context.Background())
	for _, set := range []string{
		"SELECT pg_catalog.set_config('search_path', 'app', false)",
		"SELECT set_config('search_path', '\"app\", public', false)",
	} {
		s.must(t, set)
		v := s.verdict(t, agreeContext{inTransaction: true}, "ALTER TABLE accounts ALTER COLUMN amount TYPE bigint")
		if v.action != policy.Reject {
			t.Fatalf("production after %s: %s, want refused", set, v.key())
		}
		migration := filepath.Join(t.TempDir(), "m.sql")
		if err := os.WriteFile(migration, []byte(set+";\nALTER TABLE accounts ALTER COLUMN amount TYPE bigint;\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		code, out, errOut := runCmd(t, "", "lint", "--in-transaction", "--sizes", file, migration)
		if code == 0 || !strings.Contains(out, "alter-column-type") {
			t.Errorf("lint --sizes after %s: exit %d, %s%s; the proxy on production refuses it", set, code, out, errOut)
		}
	}
}

// TestRedteamUpdateThroughView: both environments ran deployment 1 of
// rename-table's own recipe (ledger renamed to ledger2, a view ledger
// keeps the old name working: "INSERT, UPDATE and DELETE through it reach
// the table"). A later backfill updates through the view. Production's
// proxy estimates the UPDATE of the view at ledger2's 30,000 rows and
// refuses; uat finds no relation ledger in production's sizes (views are
// not exported), does not scale its estimate, and allows 10 rows.
func TestRedteamUpdateThroughView(t *testing.T) {
	view := []string{"ALTER TABLE ledger RENAME TO ledger2", "CREATE VIEW ledger AS SELECT * FROM ledger2"}
	r := startNameRig(t, view, view...)
	for _, c := range []borrowCase{
		{rule: "large-dml", inTx: true, sql: "UPDATE ledger SET amount = 0"},
		{rule: "large-dml", inTx: true, sql: "DELETE FROM ledger"},
	} {
		r.decide(t, c)
	}
}

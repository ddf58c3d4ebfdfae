package pgcatalog

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pgguard/pgguard/internal/testkit/pgtest"
	"github.com/pgguard/pgguard/policy"
)

// TestPlannerQuestionRunsNoUserCode: uat's accounts is empty, so a
// migration's UPDATE of it is estimated by production's planner. The
// planner folds every expression of constants, running the functions
// behind operators and casts (IMMUTABLE and STABLE ones), so a statement
// sent in uat could make production run code of its own with arguments
// uat's user chose. Both databases have the same objects (production's
// log "prod-sidefx", uat's "uat-sidefx"): an operator, one reached only by
// a qualified name, an explicit and an implicit cast (created by the
// superuser, as an extension would), a domain with a CHECK, a DEFAULT, a
// rule on the target (production's only), a view in a subquery. None of production's functions
// may run (its log says when one does), and every such statement is
// estimated as all of production's rows; a statement of built-ins only is
// still estimated by production's planner.
func TestPlannerQuestionRunsNoUserCode(t *testing.T) {
	pg, logPath := loggedServer(t, "uat", "production")
	for _, db := range []string{"uat", "production"} {
		env := strings.TrimSuffix(db, "uction") // prod, uat
		fx := func(name, args, ret, value string) string {
			return "CREATE FUNCTION public." + name + "(" + args + ") RETURNS " + ret + " IMMUTABLE LANGUAGE plpgsql AS $$BEGIN RAISE LOG '" +
				env + "-sidefx " + name + " %', $1; RETURN " + value + "; END$$"
		}
		setup := []string{
			"CREATE SCHEMA app",
			"CREATE TABLE accounts (id int PRIMARY KEY, status text)",
			fx("op_fx", "int, int", "bool", "true"),
			"CREATE OPERATOR public.=== (leftarg = int, rightarg = int, function = public.op_fx)",
			fx("app_op_fx", "int, int", "bool", "true"),
			"CREATE OPERATOR app.<<< (leftarg = int, rightarg = int, function = public.app_op_fx)",
			fx("cast_fx", "int", "text", "$1::varchar"),
			"CREATE CAST (int AS text) WITH FUNCTION public.cast_fx(int)",
			fx("implicit_fx", "bigint", "text", "$1::varchar"),
			"CREATE CAST (bigint AS text) WITH FUNCTION public.implicit_fx(bigint) AS IMPLICIT",
			fx("domain_fx", "int", "bool", "true"),
			"CREATE DOMAIN public.small_id AS int CHECK (public.domain_fx(VALUE))",
			fx("default_fx", "int", "text", "'d'"),
			"ALTER TABLE accounts ALTER COLUMN status SET DEFAULT public.default_fx(1006)",
			fx("rule_fx", "int", "int", "$1"),
			fx("view_fx", "int", "bool", "true"),
			"CREATE VIEW app.open_accounts AS SELECT id FROM public.accounts WHERE public.view_fx(1009)",
			"GRANT ALL ON ALL TABLES IN SCHEMA public, app TO " + pgtest.SCRAMUser,
			"GRANT USAGE ON SCHEMA app TO " + pgtest.SCRAMUser,
		}
		if err := pg.ExecAs(pgtest.SuperUser, db, setup...); err != nil {
			t.Fatal(err)
		}
	}
	// A rule on the target, in production only (in uat the rule's second
	// query would leave uat's own planner two plans to estimate).
	if err := pg.ExecAs(pgtest.SuperUser, "production", "CREATE RULE accounts_audit AS ON UPDATE TO accounts DO ALSO SELECT public.rule_fx(1007)",
		"INSERT INTO accounts SELECT g, 'open' FROM generate_series(1, 1500) g", "ANALYZE"); err != nil {
		t.Fatal(err)
	}
	if err := pg.ExecAs(pgtest.SuperUser, "uat", "ANALYZE"); err != nil {
		t.Fatal(err)
	}
	prod, uat := connect(t, pg, "production"), connect(t, pg, "uat")
	_ = prod
	ctx := context.Background()
	b := borrowFromProduction(t, pg, uat)
	for _, sql := range []string{
		"UPDATE accounts SET status = 'x' WHERE id < 10 AND 7 === 1001",
		"UPDATE accounts SET status = 'x' WHERE id < 10 AND 7 OPERATOR(app.<<<) 1002",
		"UPDATE accounts SET status = 'x' WHERE status = 1003::text",
		"UPDATE accounts SET status = 'x' WHERE status = 1004::bigint",
		"UPDATE accounts SET status = 'x' WHERE id < 1005::small_id",
		"UPDATE accounts SET status = 'x' WHERE id < 1005::public.small_id",
		"UPDATE accounts SET status = DEFAULT WHERE id < 10",
		"UPDATE accounts SET status = 'x' WHERE id < 10",
		"UPDATE accounts SET status = 'x' WHERE id < public.rule_fx(1008)",
		"UPDATE accounts SET status = 'x' WHERE id IN (SELECT id FROM app.open_accounts)",
		"DELETE FROM accounts WHERE id < 10 AND 7 === 1010",
	} {
		rows, ok := b.EstimateRows(ctx, sql)
		if !ok {
			t.Errorf("%s: no estimate", sql)
			continue
		}
		selective := sql == "UPDATE accounts SET status = DEFAULT WHERE id < 10" || sql == "UPDATE accounts SET status = 'x' WHERE id < 10"
		switch {
		case selective && rows > 100:
			t.Errorf("%s: %d rows; production's planner, asked, says about 10", sql, rows)
		case !selective && rows < 1500:
			t.Errorf("%s: %d rows; not asked of production's planner, it is all of production's 1,500", sql, rows)
		}
	}
	time.Sleep(time.Second) // the log's last lines
	log, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(log), "\n") {
		if strings.Contains(line, "prod-sidefx") {
			t.Errorf("production ran a function of its own for a uat statement: %s", line)
		}
	}
	if !strings.Contains(string(log), "uat-sidefx op_fx 7") {
		t.Errorf("uat's own planner did not fold 7 === 1001: the probe proves nothing (log:\n%s)", log)
	}
}

// TestPlannerQuestionRelationsChecked: asked directly (a question that
// names every relation qualified, as PlannerQuestion writes it), the
// source does not plan a question over a view (its definition's code
// would be folded), a table with row security (its policies'), or any
// question while a btree operator family of the database's own holds a
// built-in operator; a plain table is planned.
func TestPlannerQuestionRelationsChecked(t *testing.T) {
	pg, prod, _ := redteamServer(t)
	mustExec(t, prod, "CREATE TABLE accounts (id int PRIMARY KEY, status text)")
	mustExec(t, prod, "CREATE TABLE secrets (id int PRIMARY KEY, owner text)")
	mustExec(t, prod, "INSERT INTO accounts SELECT g, 'open' FROM generate_series(1, 1500) g")
	mustExec(t, prod, "INSERT INTO secrets SELECT g, 'x' FROM generate_series(1, 1500) g")
	mustExec(t, prod, "ALTER TABLE secrets ENABLE ROW LEVEL SECURITY")
	mustExec(t, prod, "CREATE VIEW open_accounts AS SELECT id FROM accounts WHERE status = 'open'")
	analyze(t, prod)
	ctx := context.Background()
	accounts := policy.Table{Schema: "public", Name: "accounts"}
	ask := func(question string, table policy.Table) bool {
		_, ok := EstimateRowsOn(ctx, prod, question, table)
		return ok
	}
	if !ask("SELECT 1 FROM public.accounts WHERE id <= 10", accounts) {
		t.Fatal("a plain table's question was not planned")
	}
	if ask("SELECT 1 FROM public.accounts WHERE id IN (SELECT id FROM public.open_accounts)", accounts) {
		t.Error("a question over a view was planned")
	}
	if ask("SELECT 1 FROM public.secrets WHERE id <= 10", policy.Table{Schema: "public", Name: "secrets"}) {
		t.Error("a question over a table with row security was planned")
	}
	if err := pg.ExecAs(pgtest.SuperUser, "production", "CREATE OPERATOR FAMILY public.int_fam USING btree",
		"ALTER OPERATOR FAMILY public.int_fam USING btree ADD OPERATOR 1 < (int, int)"); err != nil {
		t.Fatal(err)
	}
	if ask("SELECT 1 FROM public.accounts WHERE id <= 10", accounts) {
		t.Error("planned while a btree family of the database's own holds a built-in operator")
	}
	// The question leaves nothing behind: no view, a read-only session.
	rows, ok := prod.Query("SELECT count(*) FROM pg_catalog.pg_class WHERE relname = 'pgguard_question'")
	if !ok || len(rows) != 1 || rows[0][0] == nil || *rows[0][0] != "0" {
		t.Errorf("the question's view is left: %v", rows)
	}
}

// loggedServer starts a PostgreSQL whose log goes to the file at logPath
// (what production ran, for the tests that check a question ran none of
// its code and left none of uat's text there), with databases dbs.
func loggedServer(t *testing.T, dbs ...string) (pg *pgtest.Server, logPath string) {
	t.Helper()
	logPath = filepath.Join(t.TempDir(), "postgres.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { logFile.Close() })
	pg = pgtest.Must(t, pgtest.Options{Log: logFile})
	for _, db := range dbs {
		if _, err := pg.CreateDatabase(db); err != nil {
			t.Fatal(err)
		}
	}
	return pg, logPath
}

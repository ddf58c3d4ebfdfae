package pgcatalog

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/pgguard/pgguard/internal/testkit/pgtest"
)

// TestRedteamPlannerRunsTableCode: production's planner runs code a
// table carries besides its indexes and partition keys (which the
// question's check covers): the expressions of extended statistics
// (CREATE STATISTICS ... ON (expr), PostgreSQL 14+), which
// get_relation_statistics folds with eval_const_expressions whenever the
// table is planned, and the CHECK constraints of an inheritance child,
// which constraint exclusion (constraint_exclusion = partition, the
// default) folds the same way. A uat statement of built-ins only on such
// a table makes production run functions of its own; the question must
// not be planned there (all of production's rows).
func TestRedteamPlannerRunsTableCode(t *testing.T) {
	pg, logPath := loggedServer(t, "uat", "production")
	for _, db := range []string{"uat", "production"} {
		env := strings.TrimSuffix(db, "uction")
		fx := func(name string) string {
			return "CREATE FUNCTION public." + name + "(int) RETURNS int IMMUTABLE LANGUAGE plpgsql AS $$BEGIN RAISE LOG '" +
				env + "-sidefx " + name + " %', $1; RETURN $1; END$$"
		}
		setup := []string{
			fx("stat_fx"), fx("check_fx"),
			"CREATE TABLE accounts (id int PRIMARY KEY, status text)",
			"CREATE STATISTICS accounts_shifted ON (id + public.stat_fx(1)), status FROM accounts",
			"CREATE TABLE events (id int, kind int)",
			"CREATE TABLE events_old (CHECK (kind < public.check_fx(2))) INHERITS (events)",
			"GRANT ALL ON ALL TABLES IN SCHEMA public TO " + pgtest.SCRAMUser,
		}
		if err := pg.ExecAs(pgtest.SuperUser, db, setup...); err != nil {
			t.Fatal(err)
		}
	}
	if err := pg.ExecAs(pgtest.SuperUser, "production",
		"INSERT INTO accounts SELECT g, 'open' FROM generate_series(1, 1500) g",
		"INSERT INTO events SELECT g, g % 7 FROM generate_series(1, 1500) g",
		"INSERT INTO events_old SELECT g, 0 FROM generate_series(1, 1500) g", "ANALYZE"); err != nil {
		t.Fatal(err)
	}
	if err := pg.ExecAs(pgtest.SuperUser, "uat", "ANALYZE"); err != nil {
		t.Fatal(err)
	}
	uat := connect(t, pg, "uat")
	ctx := context.Background()
	b := borrowFromProduction(t, pg, uat)
	time.Sleep(time.Second) // setup's own lines (ANALYZE, INSERT) in the log first
	before, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		sql  string
		want int64
	}{
		{"UPDATE accounts SET status = 'x' WHERE id < 10", 1500},
		{"UPDATE events SET kind = 1 WHERE id < 10", 3000},
	} {
		rows, ok := b.EstimateRows(ctx, c.sql)
		t.Logf("%s: %d (%v)", c.sql, rows, ok)
		if ok && rows < c.want {
			t.Errorf("%s: %d rows; production's planner runs the table's own code, want all of production's %d", c.sql, rows, c.want)
		}
	}
	time.Sleep(time.Second)
	log, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(log[len(before):]), "\n") {
		if strings.Contains(line, "prod-sidefx") {
			t.Errorf("production ran a function of its own for a uat statement: %s", line)
		}
	}
}

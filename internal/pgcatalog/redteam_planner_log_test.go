package pgcatalog

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/pgguard/pgguard/internal/testkit/pgtest"
)

// TestRedteamPlannerQuestionLogsStatement: uat's accounts is empty, so a
// migration's UPDATE of it is estimated by production's planner (EXPLAIN
// of its SELECT form over the monitor connection). environments.md says
// pgguard sends no EXPLAIN that would fail, "that would leave an error
// with the statement's text in production's log", and checks only that
// the monitor may read the statement's table. The release's backfill
// names what production does not have yet — a table and a column created
// by the release's earlier migrations, which ran in uat only — so the
// EXPLAIN fails in production, and production's log holds the statement's
// WHERE, literals included, from a uat session.
func TestRedteamPlannerQuestionLogsStatement(t *testing.T) {
	pg, logPath := loggedServer(t, "uat", "production")
	for _, db := range []string{"uat", "production"} {
		if err := pg.Exec("ALTER DATABASE " + db + " OWNER TO " + pgtest.SCRAMUser); err != nil {
			t.Fatal(err)
		}
	}
	prod, uat := connect(t, pg, "production"), connect(t, pg, "uat")
	for _, q := range []*ConnQuerier{prod, uat} {
		mustExec(t, q, "SET default_transaction_read_only = off")
		mustExec(t, q, "CREATE TABLE accounts (id int PRIMARY KEY, status text)")
	}
	mustExec(t, prod, "INSERT INTO accounts SELECT g, 'open' FROM generate_series(1, 1500) g")
	// The release's earlier migrations, run in uat only so far.
	mustExec(t, uat, "CREATE TABLE closures (account_id int)")
	mustExec(t, uat, "ALTER TABLE accounts ADD COLUMN closed_at timestamptz")
	for _, q := range []*ConnQuerier{prod, uat} {
		analyze(t, q)
	}
	ctx := context.Background()
	b := borrowFromProduction(t, pg, uat)
	for _, sql := range []string{
		"UPDATE accounts SET status = 'closed' WHERE status = 'uat-literal-one' AND id IN (SELECT account_id FROM closures)",
		"UPDATE accounts SET closed_at = now() WHERE closed_at IS NULL AND status = 'uat-literal-two'",
	} {
		if rows, ok := b.EstimateRows(ctx, sql); !ok || rows < 1500 {
			t.Errorf("%s: %d (%v), want all of production's 1,500 (its planner cannot say)", sql, rows, ok)
		}
	}
	time.Sleep(time.Second) // the log's last lines
	log, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	for _, lit := range []string{"uat-literal-one", "uat-literal-two"} {
		for _, line := range strings.Split(string(log), "\n") {
			if strings.Contains(line, lit) {
				t.Errorf("production's log holds a uat statement's literal %q: %s", lit, line)
			}
		}
	}
}

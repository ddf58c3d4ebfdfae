package pgcatalog

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/pgguard/pgguard/internal/testkit/pgtest"
	"github.com/pgguard/pgguard/policy"
)

// TestRedteamPlannerQuestionCancelLogsStatement: the question's DO block
// catches its errors (WHEN OTHERS) so that production's log never holds a
// uat statement's text, but OTHERS does not catch query_canceled: when
// the question outlives its statement_timeout (it waits for the lock of
// production's own migration on the table, or folds a slow constant),
// production logs the ERROR with its STATEMENT (log_min_error_statement =
// error, the default): the whole question, the uat statement's literals
// included.
func TestRedteamPlannerQuestionCancelLogsStatement(t *testing.T) {
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
	for _, q := range []*ConnQuerier{prod, uat} {
		analyze(t, q)
	}
	ctx := context.Background()
	b := borrowFromProduction(t, pg, uat)
	question, ok := PlannerQuestion("UPDATE accounts SET status = 'closed' WHERE status = 'uat-literal-cancel'", b.sourceName(ctx))
	if !ok {
		t.Fatal("no planner question")
	}
	// Production's migration holds the table's lock longer than the
	// question's statement_timeout (60s before a fix; pgguard's context
	// gives up after 15s, the backend waits on).
	mustExec(t, prod, "BEGIN")
	mustExec(t, prod, "LOCK TABLE accounts IN ACCESS EXCLUSIVE MODE")
	rows, ok := b.Src.(*LiveSizes).EstimateRowsAt(ctx, question, policy.Table{Schema: "public", Name: "accounts"})
	t.Logf("estimate %d (%v)", rows, ok)
	if ok {
		t.Errorf("estimated %d rows while production's table was locked", rows)
	}
	// Until production's backend of the question ends (cancelled by its
	// statement_timeout).
	for i := 0; i < 150; i++ {
		r, ok := prod.Query("SELECT count(*) FROM pg_catalog.pg_stat_activity WHERE application_name = 'pgguard-sizes' AND query LIKE '%pgguard_question%' AND pid <> pg_catalog.pg_backend_pid()")
		if ok && len(r) == 1 && *r[0][0] == "0" {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	mustExec(t, prod, "ROLLBACK")
	time.Sleep(time.Second)
	log, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(log), "\n") {
		if strings.Contains(line, "uat-literal-cancel") {
			t.Errorf("production's log holds a uat statement's literal: %.300s", line)
		}
	}
}

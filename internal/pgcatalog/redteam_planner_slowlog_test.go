package pgcatalog

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/pgguard/pgguard/internal/testkit/pgtest"
	"github.com/pgguard/pgguard/policy"
)

// TestRedteamPlannerQuestionSlowLogsStatement: production logs its slow
// statements (log_min_duration_statement, as most productions do, here
// 500ms), not every statement. A uat statement whose planning takes long
// (a join of a hundred aliases of the table: cancelled by the question's
// statement_timeout, the cancel caught) makes the question's DO block a
// slow statement, and production's log holds its text: the uat
// statement's literals.
func TestRedteamPlannerQuestionSlowLogsStatement(t *testing.T) {
	pg, logPath := loggedServer(t, "uat", "production")
	for _, db := range []string{"uat", "production"} {
		if err := pg.Exec("ALTER DATABASE " + db + " OWNER TO " + pgtest.SCRAMUser); err != nil {
			t.Fatal(err)
		}
	}
	if err := pg.ExecAs(pgtest.SuperUser, "production", "ALTER DATABASE production SET log_min_duration_statement = 500"); err != nil {
		t.Fatal(err)
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
	var from, where []string
	for i := 0; i < 100; i++ {
		from = append(from, fmt.Sprintf("accounts a%d", i))
		if i > 0 {
			where = append(where, fmt.Sprintf("a%d.id = a%d.id", i-1, i))
		}
	}
	sql := "UPDATE accounts SET status = 'closed' WHERE status = 'uat-literal-slow' AND id IN (SELECT a0.id FROM " +
		strings.Join(from, ", ") + " WHERE " + strings.Join(where, " AND ") + ")"
	question, ok := PlannerQuestion(sql, b.sourceName(ctx))
	if !ok {
		return // not asked of production
	}
	rows, ok := b.Src.(*LiveSizes).EstimateRowsAt(ctx, question, b.mustSource(t, "accounts"))
	t.Logf("estimate %d (%v)", rows, ok)
	time.Sleep(time.Second)
	log, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(log), "\n") {
		if strings.Contains(line, "uat-literal-slow") {
			t.Errorf("production's log holds a uat statement's literal: %.300s", line)
		}
	}
}

func (b *Borrowed) mustSource(t *testing.T, table string) policy.Table {
	t.Helper()
	_, st, ok := b.source(context.Background(), table)
	if !ok {
		t.Fatalf("%s: not in the source", table)
	}
	return st
}

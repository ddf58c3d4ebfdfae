package pgcatalog

import (
	"context"
	"testing"
)

// TestRedteamBorrowedJoinWithTableEmptyInUAT: uat's accounts has rows, so
// the statement is estimated by uat's own planner and scaled by the share
// of uat's rows it touches; but the table it joins (closures, filled in
// production, empty in uat) decides which rows it touches. uat's planner
// estimates the join with an empty table at a row or so, a share of
// almost nothing, and the estimate borrowed is a few dozen of
// production's rows, where production's planner (and the statement, run
// there) says 20,000: uat allows what production refuses. The count that
// backs a join's estimate (large-dml) counts in uat, where nothing
// matches.
func TestRedteamBorrowedJoinWithTableEmptyInUAT(t *testing.T) {
	pg, prod, uat := redteamServer(t)
	for _, q := range []*ConnQuerier{prod, uat} {
		mustExec(t, q, "CREATE TABLE accounts (id int PRIMARY KEY, status text)")
		mustExec(t, q, "CREATE TABLE closures (account_id int)")
	}
	mustExec(t, prod, "INSERT INTO accounts SELECT g, 'open' FROM generate_series(1, 40000) g")
	mustExec(t, prod, "INSERT INTO closures SELECT g * 2 FROM generate_series(1, 20000) g")
	mustExec(t, uat, "INSERT INTO accounts SELECT g, 'open' FROM generate_series(1, 1000) g")
	for _, q := range []*ConnQuerier{prod, uat} {
		analyze(t, q)
	}
	ctx := context.Background()
	b := borrowFromProduction(t, pg, uat)
	for _, sql := range []string{
		"UPDATE accounts SET status = 'closed' FROM closures c WHERE accounts.id = c.account_id",
		"UPDATE accounts SET status = 'closed' WHERE id IN (SELECT account_id FROM closures)",
		"DELETE FROM accounts WHERE EXISTS (SELECT 1 FROM closures c WHERE c.account_id = accounts.id)",
	} {
		truth, _ := (&Catalog{Q: prod}).EstimateRows(ctx, sql)
		got, ok := b.EstimateRows(ctx, sql)
		t.Logf("%s: borrowed %d (%v), production's planner %d", sql, got, ok, truth)
		if ok && got < truth/2 {
			t.Errorf("%s: borrowed estimate %d rows; production's planner says %d", sql, got, truth)
		}
	}
}

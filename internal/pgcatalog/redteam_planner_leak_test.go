package pgcatalog

import (
	"context"
	"testing"
	"time"

	"github.com/pgguard/pgguard/internal/testkit/pgtest"
)

// TestRedteamPlannerReadsProductionData: a uat session's migration
// statement on a table empty in uat is estimated by production's planner,
// over the monitor connection, whose role environments.md has granted
// pg_read_all_data (or SELECT on the tables). To estimate a comparison
// with an expression of constants, the planner evaluates the expression,
// stable functions included (estimate_expression_value), and
// table_to_xml is a stable function that returns a whole table. The row
// estimate, which the refusal reports to the uat client ("UPDATE of about
// N rows"), then depends on production's rows: a uat user reads
// production's data through pgguard a character at a time. Here the
// estimate tracks the first character of a production secret.
func TestRedteamPlannerReadsProductionData(t *testing.T) {
	pg, prod, uat := redteamServer(t)
	for _, q := range []*ConnQuerier{prod, uat} {
		mustExec(t, q, "CREATE TABLE accounts (id int PRIMARY KEY, status text)")
	}
	mustExec(t, prod, "INSERT INTO accounts SELECT g, 'open' FROM generate_series(1, 30000) g")
	mustExec(t, prod, "CREATE TABLE api_keys (k text)")
	mustExec(t, uat, "CREATE TABLE api_keys (k text)") // uat's own planner must be able to plan the probe too
	mustExec(t, prod, "INSERT INTO api_keys VALUES ('hunter2')")
	for _, q := range []*ConnQuerier{prod, uat} {
		analyze(t, q)
	}
	ctx := context.Background()
	// The probe: ids below 100 times the code of the key's first
	// character, whose position in table_to_xml's text is fixed.
	probe := "UPDATE accounts SET status = 'x' WHERE id < 100 * ascii(substr(split_part(table_to_xml('api_keys', true, false, '')::text, '<k>', 2), 1, 1))"
	estimate := func() int64 {
		live := NewLiveSizes("production", ConnSpec{Upstream: pg.Addr(), User: pgtest.SCRAMUser, Password: pgtest.Password, Database: "production", ConnectTimeout: 5 * time.Second}, time.Minute, nil)
		if err := live.Read(ctx); err != nil {
			t.Fatal(err)
		}
		b := &Borrowed{Catalog: &Catalog{Q: uat}, Src: live}
		rows, ok := b.EstimateRows(ctx, probe)
		if !ok {
			t.Fatal("no estimate")
		}
		return rows
	}
	h := estimate()                                        // 'h' is 104
	mustExec(t, prod, "UPDATE api_keys SET k = 'Aunter2'") // 'A' is 65
	a := estimate()
	t.Logf("estimates: %d with the key hunter2, %d with Aunter2", h, a)
	if h != a {
		t.Errorf("production's planner evaluated a uat statement's functions over production's data: the estimate uat reports is %d rows when production's key starts with h (ascii 104), %d when it starts with A (65)", h, a)
	}
}

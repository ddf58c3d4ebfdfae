package proxy

import (
	"context"
	"testing"

	"github.com/pgguard/pgguard/internal/testkit/pgtest"
)

// TestRedteamCreatedNameNoLongerNew: a table created in the transaction
// is exempt from large-dml as new (nobody else sees its rows). Two ways
// for its name to stop standing for new rows that the memory of the
// transaction did not follow:
//   - ALTER TABLE big INHERIT created: an UPDATE or DELETE of created
//     reaches big's 300,000 rows (DELETE FROM created empties big);
//   - the table dropped inside a DO block, and its name taken by a view
//     of big: the DO block's DROP was not remembered (a plain DROP is,
//     TestRedteamLargeDMLCreatedNameReused).
//
// Both ran unjudged; PostgreSQL changes every row of big.
func TestRedteamCreatedNameNoLongerNew(t *testing.T) {
	_, addr, _ := guardProxy(t, "", nil)
	ctx := context.Background()
	for _, c := range []struct {
		name  string
		steps []string
	}{
		{"UPDATE of a new parent of big", []string{"CREATE TABLE rt20d_par (id bigint, account int NOT NULL, note text)", "ALTER TABLE big INHERIT rt20d_par", "UPDATE rt20d_par SET note = note"}},
		{"DELETE of a new parent of big", []string{"CREATE TABLE rt20d_par (id bigint, account int NOT NULL, note text)", "ALTER TABLE big INHERIT rt20d_par", "DELETE FROM rt20d_par"}},
		{"name dropped in a DO block, taken by a view", []string{"CREATE TABLE rt20d_dd (x int)", "DO $$ BEGIN DROP TABLE rt20d_dd; END $$", "CREATE VIEW rt20d_dd AS SELECT * FROM big", "UPDATE rt20d_dd SET note = note"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			conn, _ := guardConn(t, addr, pgtest.SuperUser, "")
			mustExec(t, conn, "BEGIN")
			defer conn.Exec(ctx, "ROLLBACK")
			last := len(c.steps) - 1
			for _, s := range c.steps[:last] {
				mustExec(t, conn, s)
			}
			tag, err := conn.Exec(ctx, c.steps[last])
			if err == nil {
				t.Fatalf("%s: ran (%s); want large-dml's refusal", c.steps[last], tag)
			}
			wantRefusal(t, err, "large-dml")
		})
	}
}

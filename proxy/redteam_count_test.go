package proxy

import (
	"context"
	"testing"
	"time"

	"github.com/pgguard/pgguard/internal/testkit/pgtest"
)

// TestRedteamCountRunsVolatileOperators: large-dml counts the rows of an
// UPDATE whose WHERE the planner can only guess, by running its SELECT
// form, when that calls no function that may have side effects
// (sideEffectFree looks at function calls). An operator is a function
// call the parse tree does not spell as one: ### here is backed by a
// VOLATILE function that writes a row to a log table. In a migration's
// session, outside a transaction block, pgguard's count ran it on the
// rows of the table and then refused the UPDATE, saying nothing ran: the log
// holds the rows of pgguard's count (committed: the count has a
// transaction of its own). PostgreSQL runs nothing of a statement that
// is not sent. Not counted, such a WHERE's estimate (a default
// selectivity) must not stand either: the UPDATE changes every row.
func TestRedteamCountRunsVolatileOperators(t *testing.T) {
	_, addr, _ := guardProxy(t, "", nil)
	ctx := context.Background()
	if err := pgExec("guard",
		"DROP TABLE IF EXISTS rt20d_log", "CREATE TABLE rt20d_log (n int)",
		"CREATE OR REPLACE FUNCTION rt20d_logged(bigint, int) RETURNS bigint LANGUAGE plpgsql AS $$ BEGIN INSERT INTO rt20d_log VALUES (1); RETURN $1 + $2; END $$",
		"DROP OPERATOR IF EXISTS ### (bigint, int)",
		"CREATE OPERATOR ### (LEFTARG = bigint, RIGHTARG = int, FUNCTION = rt20d_logged)",
	); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		pgExec("guard", "DROP TABLE IF EXISTS rt20d_cnt", "DROP OPERATOR IF EXISTS ### (bigint, int)", "DROP FUNCTION IF EXISTS rt20d_logged(bigint, int)", "DROP TABLE IF EXISTS rt20d_log")
	})
	for _, c := range []struct{ name, sql string }{
		{"operator", "UPDATE rt20d_cnt SET note = note WHERE (id ### 0) > 0"},
		{"OPERATOR() syntax", "UPDATE rt20d_cnt SET note = note WHERE id OPERATOR(public.###) 0 > 0"},
		// Not counted (volatile), the planner's default selectivity of a
		// WHERE on an expression (1/3 of the 300,000 rows: 100,000, the
		// limit) stood, and all 300,000 rows changed.
		{"volatile function", "UPDATE rt20d_cnt SET note = note WHERE rt20d_logged(id, 0) > 0"},
	} {
		t.Run(c.name, func(t *testing.T) {
			// A table of its own per case: an UPDATE that ran would
			// change the next one's estimate.
			// (The load's statistics are flushed before the ANALYZE, as
			// for big: else they count as changes since it.)
			if err := pgExec("guard", "DROP TABLE IF EXISTS rt20d_cnt", "CREATE TABLE rt20d_cnt (id bigint, note text)",
				"INSERT INTO rt20d_cnt SELECT g, 'x' FROM generate_series(1, 300000) g", "SELECT pg_stat_force_next_flush()"); err != nil {
				t.Fatal(err)
			}
			time.Sleep(200 * time.Millisecond)
			if err := pgExec("guard", "ANALYZE rt20d_cnt", "TRUNCATE rt20d_log"); err != nil {
				t.Fatal(err)
			}
			conn, _ := guardConn(t, addr, pgtest.SuperUser, "application_name=flyway")
			_, err := conn.Exec(ctx, c.sql)
			if err == nil {
				t.Fatalf("%s ran; want large-dml's refusal", c.sql)
			}
			wantRefusal(t, err, "large-dml")
			var n int
			if err := conn.QueryRow(ctx, "SELECT count(*) FROM rt20d_log").Scan(&n); err != nil {
				t.Fatal(err)
			}
			if n != 0 {
				t.Errorf("%s was refused (nothing ran), but the operator's function ran %d times: pgguard's count ran it", c.sql, n)
			}
		})
	}
}

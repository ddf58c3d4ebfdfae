package proxy

import (
	"context"
	"testing"

	"github.com/pgguard/pgguard/internal/testkit/pgtest"
)

// Red team (issue 21): the session's own lock_timeout after a statement
// pgguard gave its lock_timeout must be what PostgreSQL alone would show.
// Each sequence is played straight to PostgreSQL and through pgguard; the
// SHOW lock_timeout answers must be the same.
func TestRedteamLockTimeoutPutBack(t *testing.T) {
	_, addr, _ := guardProxy(t, "", nil)
	ctx := context.Background()
	t.Cleanup(func() { pgExec("guard", "DROP TABLE IF EXISTS rt_lt") })
	for _, c := range []struct {
		name  string
		steps []string // "SHOW" records SHOW lock_timeout
	}{
		// SET LOCAL lock_timeout = 0 in the block: pgguard sets its own
		// with a session-level SET and puts '0' back with another, which
		// PostgreSQL keeps at COMMIT in place of the session's 5s.
		{"SET LOCAL 0 in a block, ALTER, COMMIT", []string{"SET lock_timeout = '5s'", "BEGIN", "SET LOCAL lock_timeout = 0", "ALTER TABLE rt_lt ADD COLUMN IF NOT EXISTS c int", "SHOW", "COMMIT", "SHOW"}},
		{"SET LOCAL 0 in a block, ALTER in a Query with COMMIT", []string{"SET lock_timeout = '5s'", "BEGIN", "SET LOCAL lock_timeout = 0", "ALTER TABLE rt_lt ADD COLUMN IF NOT EXISTS c int; COMMIT", "SHOW"}},
		{"SET LOCAL 20s in a block, ALTER, COMMIT", []string{"SET lock_timeout = '5s'", "BEGIN", "SET LOCAL lock_timeout = '20s'", "ALTER TABLE rt_lt ADD COLUMN IF NOT EXISTS c int", "SHOW", "COMMIT", "SHOW"}},
		{"SET LOCAL 0 in a savepoint, ALTER, RELEASE, COMMIT", []string{"SET lock_timeout = '5s'", "BEGIN", "SAVEPOINT a", "SET LOCAL lock_timeout = 0", "ALTER TABLE rt_lt ADD COLUMN IF NOT EXISTS c int", "RELEASE a", "SHOW", "COMMIT", "SHOW"}},
		{"SET LOCAL 0 in a block, ALTER, ROLLBACK", []string{"SET lock_timeout = '5s'", "BEGIN", "SET LOCAL lock_timeout = 0", "ALTER TABLE rt_lt ADD COLUMN IF NOT EXISTS c int", "ROLLBACK", "SHOW"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			play := func(direct bool) []string {
				if err := pgExec("guard", "DROP TABLE IF EXISTS rt_lt", "CREATE TABLE rt_lt (id int)", "GRANT ALL ON rt_lt TO PUBLIC"); err != nil {
					t.Fatal(err)
				}
				conn := connect(t, pg.DSN(pgtest.SuperUser, "guard"))
				if !direct {
					conn, _ = guardConn(t, addr, pgtest.SuperUser, "")
				}
				var shows []string
				for _, q := range c.steps {
					if q == "SHOW" {
						var s string
						if err := conn.QueryRow(ctx, "SHOW lock_timeout").Scan(&s); err != nil {
							t.Fatal(err)
						}
						shows = append(shows, s)
						continue
					}
					if _, err := conn.Exec(ctx, q); err != nil {
						t.Fatalf("%s: %v", q, err)
					}
				}
				return shows
			}
			want, got := play(true), play(false)
			if len(want) != len(got) {
				t.Fatalf("SHOW lock_timeout: %v through pgguard, %v straight to PostgreSQL", got, want)
			}
			for i := range want {
				if want[i] != got[i] {
					t.Errorf("SHOW lock_timeout: %v through pgguard, %v straight to PostgreSQL", got, want)
					break
				}
			}
		})
	}
}

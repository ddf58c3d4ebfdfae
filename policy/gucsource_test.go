package policy

import (
	"context"
	"fmt"
	"math/rand"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgguard/pgguard/internal/testkit/pgtest"
)

// gucScripts are sessions of Queries: each way a SET lock_timeout is
// undone (ROLLBACK, a failed implicit transaction, ROLLBACK TO a
// savepoint set before it, a statement that never ran after an error), or
// kept (COMMIT, RELEASE), and guc.c's SET LOCAL cases.
var gucScripts = [][]string{
	{"BEGIN", "SET lock_timeout = 0", "ROLLBACK"},
	{"BEGIN", "SET lock_timeout = 0", "COMMIT"},
	{"SET lock_timeout = 0; SELECT 1/0"},
	{"SET lock_timeout = 0; SELECT 1"},
	{"SELECT 1/0; SET lock_timeout = 0"},
	{"BEGIN; SET lock_timeout = 0; COMMIT; SELECT 1/0"},
	{"BEGIN", "SAVEPOINT a", "SET lock_timeout = 0", "ROLLBACK TO a", "COMMIT"},
	{"BEGIN", "SAVEPOINT a", "SET lock_timeout = 0", "RELEASE a", "COMMIT"},
	{"BEGIN", "SET lock_timeout = 0", "SAVEPOINT a", "RESET lock_timeout", "ROLLBACK TO a", "COMMIT"},
	{"BEGIN", "SET lock_timeout = 0", "SELECT 1/0", "ROLLBACK"},
	{"BEGIN", "SET lock_timeout = 0", "SELECT 1/0", "COMMIT"},
	{"BEGIN", "SAVEPOINT a", "SET lock_timeout = 0", "SELECT 1/0", "ROLLBACK TO a", "COMMIT"},
	{"BEGIN", "SET LOCAL lock_timeout = 0", "COMMIT"},
	{"BEGIN", "SET lock_timeout = 0", "SET LOCAL lock_timeout = '5s'", "COMMIT"},
	{"BEGIN", "SET LOCAL lock_timeout = 0", "SET lock_timeout = '5s'", "COMMIT"},
	{"BEGIN", "SAVEPOINT a", "SET LOCAL lock_timeout = 0", "RELEASE a", "COMMIT"},
	{"SET lock_timeout = 0", "BEGIN", "RESET lock_timeout", "ROLLBACK"},
	{"SET lock_timeout = 0", "BEGIN", "RESET lock_timeout", "COMMIT"},
	{"SET lock_timeout = 0", "DISCARD ALL"},
	{"SET lock_timeout = 0", "RESET ALL"},
	{"SET LOCAL lock_timeout = 0"},
	{"SET LOCAL lock_timeout = 0; SELECT 1"},
	{"SET lock_timeout = 0", "BEGIN", "SET LOCAL lock_timeout TO DEFAULT", "COMMIT"},
	{"SELECT pg_catalog.set_config('lock_timeout', '0', false)"},
	{"CREATE FUNCTION f() RETURNS int LANGUAGE sql SET lock_timeout = 0 AS 'SELECT 1'", "SELECT f()"},
}

// The model of lock_timeout's source follows PostgreSQL: each script runs
// on a real server, and after every Query the model's Session must be
// whether pg_settings says 'session' (not asked in a failed block).
func TestSettingSourceMatchesServer(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping the PostgreSQL source check in -short mode")
	}
	s := pgtest.Must(t, pgtest.Options{})
	for i, script := range gucScripts {
		t.Run(fmt.Sprint(i), func(t *testing.T) { runGUCScript(t, s, script) })
	}
}

// Random sessions of the statements above, a few joined into one Query,
// against the server (seeded: a failure names its script).
func TestSettingSourceRandomSessions(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping the PostgreSQL source check in -short mode")
	}
	s := pgtest.Must(t, pgtest.Options{})
	pool := []string{
		"SET lock_timeout = 0", "SET LOCAL lock_timeout = 0", "RESET lock_timeout", "SET lock_timeout TO DEFAULT",
		"SET LOCAL lock_timeout TO DEFAULT", "RESET ALL", "DISCARD ALL", "BEGIN", "COMMIT", "ROLLBACK",
		"SAVEPOINT a", "SAVEPOINT b", "RELEASE a", "RELEASE b", "ROLLBACK TO a", "ROLLBACK TO b",
		"SELECT 1/0", "SELECT 1", "SELECT pg_catalog.set_config('lock_timeout', '0', false)", "SHOW lock_timeout",
	}
	rng := rand.New(rand.NewSource(20261207))
	for i := 0; i < 300; i++ {
		var script []string
		for j := 0; j < 2+rng.Intn(10); j++ {
			var q []string
			for k := 0; k < 1+rng.Intn(3)*rng.Intn(2); k++ {
				q = append(q, pool[rng.Intn(len(pool))])
			}
			script = append(script, strings.Join(q, "; "))
		}
		t.Run(fmt.Sprint(i), func(t *testing.T) { runGUCScript(t, s, script) })
	}
}

func runGUCScript(t *testing.T, s *pgtest.Server, script []string) {
	ctx := context.Background()
	conn, err := pgconn.Connect(ctx, s.DSN(pgtest.SuperUser, "postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	conn.Exec(ctx, "DROP FUNCTION IF EXISTS f()").ReadAll()
	var src SettingSource
	start := byte('I')
	for _, q := range script {
		rs, err := conn.Exec(ctx, q).ReadAll()
		completed, failed := 0, err != nil
		for _, r := range rs {
			if r.Err != nil {
				failed = true
				break
			}
			completed++
		}
		status := conn.TxStatus()
		// As the proxy does: while the model is Clean, only a Query that
		// names lock_timeout is told.
		if !src.Clean() || MentionsLockTimeout(q, src.Session()) {
			src.Settle(LockTimeoutOps(q), completed, failed, start, status)
		}
		start = status
		if status == 'E' {
			continue
		}
		res, err := conn.Exec(ctx, "SELECT source FROM pg_catalog.pg_settings WHERE name = 'lock_timeout'").ReadAll()
		if err != nil || len(res) != 1 || len(res[0].Rows) != 1 {
			t.Fatalf("%q: asking the source: %v", script, err)
		}
		if got, want := src.Session(), string(res[0].Rows[0][0]) == "session"; got != want {
			t.Fatalf("%q: after %q the server's source is %q, the model's session=%v", script, q, res[0].Rows[0][0], got)
		}
	}
}

package proxy

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgguard/pgguard/internal/testkit/pgtest"
)

// Red team (issue 21, round 2): "a concurrent build never kills another
// session's build". Another session's CREATE INDEX CONCURRENTLY on rt4_b
// waits for a writer (its first phase); meanwhile the migration sends,
// through pgguard, another statement that runs CONCURRENTLY on the same
// table: REINDEX ... CONCURRENTLY, or a DROP INDEX that pgguard itself
// makes CONCURRENTLY. Each waits for the other build's lock with a
// snapshot, which the other build then waits for: PostgreSQL cancels one
// of them as a deadlock. pgguard looks for another build only before a
// CREATE INDEX CONCURRENTLY. The promise: the other session's build
// completes, valid; the migration's statement runs after it or is
// refused by pgguard (lock-queue), never cancelled by the server.
func TestRedteamOtherConcurrentOperationsBesideABuild(t *testing.T) {
	for _, c := range []struct{ name, sql string }{
		{"REINDEX INDEX CONCURRENTLY", "REINDEX INDEX CONCURRENTLY rt4_b_x"},
		{"REINDEX TABLE CONCURRENTLY", "REINDEX TABLE CONCURRENTLY rt4_b"},
		{"DROP INDEX, made CONCURRENTLY by pgguard", "DROP INDEX rt4_b_x"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, addr, _ := guardProxy(t, "lock_queue: {deadline: 20s, threshold: 300ms}\n", nil)
			ctx := context.Background()
			if err := pgExec("guard", "DROP TABLE IF EXISTS rt4_b", "CREATE TABLE rt4_b (id int PRIMARY KEY, v text)",
				"INSERT INTO rt4_b SELECT g, md5(g::text) FROM generate_series(1, 5000) g", "CREATE INDEX rt4_b_x ON rt4_b (id, v)"); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { pgExec("guard", "DROP TABLE IF EXISTS rt4_b") })
			holder := connect(t, pg.DSN(pgtest.SuperUser, "guard"))
			mustExec(t, holder, "BEGIN")
			mustExec(t, holder, "UPDATE rt4_b SET v = v WHERE id = 1")
			other := connect(t, pg.DSN(pgtest.SuperUser, "guard")+"&application_name=other-build")
			built := make(chan error, 1)
			go func() {
				_, err := other.Exec(ctx, "CREATE INDEX CONCURRENTLY rt4_b_a ON rt4_b (v)")
				built <- err
			}()
			time.Sleep(500 * time.Millisecond) // the other build waits for the writer
			defer commitAfter(holder, 1500*time.Millisecond)()
			conn, _ := guardConn(t, addr, pgtest.SuperUser, "")
			_, err := conn.Exec(ctx, c.sql)
			otherErr := <-built
			if otherErr != nil {
				t.Errorf("the other session's build: %v; want it never to be the victim (the migration's %s: %v)", otherErr, c.sql, err)
			}
			var pe *pgconn.PgError
			if errors.As(err, &pe) && pe.Code == "40P01" {
				t.Errorf("the migration's %s was cancelled by the server as a deadlock: %v; want it to wait for the other build or be refused by pgguard", c.sql, err)
			} else if err != nil {
				wantRefusal(t, err, "lock-queue")
			}
		})
	}
}

package proxy

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/pgguard/pgguard/internal/testkit/pgtest"
)

// pgguard's own questions before a statement that blocks writes (what is
// the session's lock_timeout?) leave nothing the client can see: no
// snapshot taken before the client's first statement of a REPEATABLE READ
// transaction, no portal in pg_cursors, no backend_xmin pinned while the
// session is idle in its transaction, nothing that stops COPY FREEZE. Each
// case is played straight to PostgreSQL too, and must give the same result.
func TestOwnQuestionsLeaveNoTrace(t *testing.T) {
	// With the look at the lock queue (guardProxy turns it off unless the
	// rules set it), whose questions are pgguard's too.
	_, addr, _ := guardProxy(t, "lock_queue: {deadline: 10s, threshold: 1s}\n", nil)
	ctx := context.Background()
	if err := pgExec("guard", "DROP TABLE IF EXISTS trace_t", "CREATE TABLE trace_t (id int)", "INSERT INTO trace_t VALUES (1)",
		"GRANT ALL ON trace_t TO PUBLIC"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pgExec("guard", "DROP TABLE IF EXISTS trace_t") })
	direct := func(t *testing.T) *pgx.Conn { return connect(t, pg.DSN(pgtest.SuperUser, "guard")) }
	through := func(t *testing.T) *pgx.Conn {
		c, _ := guardConn(t, addr, pgtest.SuperUser, "")
		return c
	}
	for _, side := range []struct {
		name string
		conn func(*testing.T) *pgx.Conn
	}{{"direct", direct}, {"through pgguard", through}} {
		t.Run(side.name, func(t *testing.T) {
			// Lock first, then read: the snapshot is the first read's, taken
			// after the writer the LOCK waited for had committed.
			writer := direct(t)
			mustExec(t, writer, "BEGIN")
			mustExec(t, writer, "INSERT INTO trace_t VALUES (2)")
			reader := side.conn(t)
			mustExec(t, reader, "BEGIN ISOLATION LEVEL REPEATABLE READ")
			locked := make(chan error, 1)
			go func() {
				_, err := reader.Exec(ctx, "LOCK TABLE trace_t IN SHARE MODE")
				locked <- err
			}()
			time.Sleep(300 * time.Millisecond)
			mustExec(t, writer, "COMMIT")
			if err := <-locked; err != nil {
				t.Fatalf("LOCK: %v", err)
			}
			var n int
			if err := reader.QueryRow(ctx, "SELECT count(*) FROM trace_t").Scan(&n); err != nil || n != 2 {
				t.Fatalf("REPEATABLE READ after LOCK sees %d rows (%v), want 2: the snapshot was taken before the LOCK", n, err)
			}
			mustExec(t, reader, "COMMIT")
			mustExec(t, writer, "DELETE FROM trace_t WHERE id = 2")

			// Idle in a transaction after a LOCK: no cursor, no snapshot held.
			var pid uint32
			if err := reader.QueryRow(ctx, "SELECT pg_backend_pid()").Scan(&pid); err != nil {
				t.Fatal(err)
			}
			mustExec(t, reader, "BEGIN")
			mustExec(t, reader, "LOCK TABLE trace_t IN SHARE MODE")
			var xmin *string
			if err := writer.QueryRow(ctx, "SELECT backend_xmin::text FROM pg_stat_activity WHERE pid = $1", pid).Scan(&xmin); err != nil {
				t.Fatal(err)
			}
			if xmin != nil {
				t.Errorf("backend_xmin = %s while idle in a transaction that took no snapshot, want NULL", *xmin)
			}
			var cursors, prepared int
			if err := reader.QueryRow(ctx, "SELECT (SELECT count(*) FROM pg_cursors WHERE name <> ''), (SELECT count(*) FROM pg_prepared_statements WHERE name LIKE 'pgguard%')").Scan(&cursors, &prepared); err != nil {
				t.Fatal(err)
			}
			if cursors != 0 || prepared != 0 {
				t.Errorf("%d cursors and %d statements of pgguard's open in the client's transaction, want none", cursors, prepared)
			}
			mustExec(t, reader, "COMMIT")

			// COPY FREEZE needs a transaction with no other open portal or
			// registered snapshot; TRUNCATE (ACCESS EXCLUSIVE) is checked first.
			mustExec(t, reader, "BEGIN")
			mustExec(t, reader, "CREATE TABLE trace_frozen (a int)")
			mustExec(t, reader, "TRUNCATE trace_frozen")
			if _, err := reader.PgConn().CopyFrom(ctx, strings.NewReader("1\n2\n"), "COPY trace_frozen FROM STDIN (FREEZE)"); err != nil {
				t.Errorf("COPY FREEZE after TRUNCATE in the same transaction: %v", err)
			}
			mustExec(t, reader, "ROLLBACK")

			// The look at the lock queue before a DDL or a LOCK in a READ
			// COMMITTED block reads pg_stat_activity, which PostgreSQL
			// then keeps for the rest of the transaction: the client's own
			// read of it afterwards shows its own query, not pgguard's,
			// and a snapshot of it the client took first is kept. A writer
			// younger than lock_queue.threshold holds a conflicting lock,
			// so that the look reads pg_stat_activity (with no lock to
			// look at, PostgreSQL never reads it), and ends soon.
			hold := func() (wait func()) {
				mustExec(t, writer, "BEGIN")
				mustExec(t, writer, "INSERT INTO trace_t VALUES (3)")
				done := make(chan struct{})
				go func() {
					defer close(done)
					time.Sleep(200 * time.Millisecond)
					writer.Exec(ctx, "ROLLBACK")
				}()
				return func() { <-done }
			}
			for _, ddl := range []string{"ALTER TABLE trace_t ADD COLUMN traced int", "LOCK TABLE trace_t IN SHARE MODE"} {
				mustExec(t, reader, "BEGIN")
				wait := hold()
				mustExec(t, reader, ddl)
				wait()
				const own = "SELECT query FROM pg_stat_activity WHERE pid = pg_backend_pid()"
				var query string
				if err := reader.QueryRow(ctx, own).Scan(&query); err != nil || query != own {
					t.Errorf("after %s in a block, its own row of pg_stat_activity shows %q (%v), want the query itself", ddl, query, err)
				}
				mustExec(t, reader, "ROLLBACK")
				mustExec(t, reader, "BEGIN")
				first := own + " AND true"
				mustExec(t, reader, first)
				wait = hold()
				mustExec(t, reader, ddl)
				wait()
				if err := reader.QueryRow(ctx, own).Scan(&query); err != nil || query != first {
					t.Errorf("after a read of pg_stat_activity and %s in a block, it shows %q (%v), want the snapshot of the first read (%q)", ddl, query, err, first)
				}
				mustExec(t, reader, "ROLLBACK")
			}
		})
	}
}

// A NOTIFY that reaches a listening session while pgguard holds the answer
// of a DDL statement it may retry is the client's: it arrives, whether the
// statement then fails for good or succeeds on a later try.
func TestNotificationDuringRetriedStatement(t *testing.T) {
	rules := "lock_timeout: 300ms\nlock_timeout_retries: {attempts: 2, initial_backoff: 100ms, max_backoff: 100ms}\n"
	_, addr, _ := guardProxy(t, rules, nil)
	ctx := context.Background()
	defer pgExec("guard", "ALTER TABLE small DROP COLUMN IF EXISTS notified")
	holder := connect(t, pg.DSN(pgtest.SuperUser, "guard"))
	notifier := connect(t, pg.DSN(pgtest.SuperUser, "guard"))
	conn, _ := guardConn(t, addr, pgtest.SuperUser, "")
	mustExec(t, conn, "LISTEN pgguard_test")

	mustExec(t, holder, "BEGIN")
	mustExec(t, holder, "LOCK TABLE small IN ACCESS SHARE MODE")
	notified := make(chan struct{})
	go func() {
		defer close(notified)
		time.Sleep(100 * time.Millisecond)
		notifier.Exec(ctx, "NOTIFY pgguard_test, 'during the first try'")
	}()
	defer func() { <-notified }() // before the cleanup closes notifier
	if _, err := conn.Exec(ctx, "ALTER TABLE small ADD COLUMN notified int"); pgCode(err) != "55P03" {
		t.Fatalf("ALTER with the lock held: %v, want 55P03 after the retry", err)
	}
	mustExec(t, holder, "ROLLBACK")
	wctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	n, err := conn.WaitForNotification(wctx)
	if err != nil || n.Payload != "during the first try" {
		t.Fatalf("notification: %+v %v, want the one sent while the first try waited", n, err)
	}
}

// lock_timeout is for statements that block writes, and only for them
// (lock_timeout_scope: ddl, the default): an application's UPDATE that waits
// for a row lock longer than the policy's lock_timeout, or queues behind a
// migration's waiting ALTER, is never cancelled by pgguard, while the ALTER
// gives up after the policy's lock_timeout and the session's own value is
// back afterwards, however it was set.
func TestLockTimeoutOnlyForDDL(t *testing.T) {
	rules := "lock_timeout: 300ms\nlock_timeout_retries: {attempts: 2, initial_backoff: 100ms, max_backoff: 100ms}\n"
	_, addr, _ := guardProxy(t, rules, nil)
	ctx := context.Background()
	if err := pgExec("guard", "DROP TABLE IF EXISTS ddl_only", "CREATE TABLE ddl_only (id int PRIMARY KEY, v text)",
		"INSERT INTO ddl_only SELECT g, 'x' FROM generate_series(1, 100) g", "GRANT ALL ON ddl_only TO PUBLIC"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pgExec("guard", "DROP TABLE IF EXISTS ddl_only") })
	holder := connect(t, pg.DSN(pgtest.SuperUser, "guard"))

	t.Run("a row-lock wait is not cancelled", func(t *testing.T) {
		app, _ := guardConn(t, addr, pgtest.SuperUser, "")
		mustExec(t, holder, "BEGIN")
		mustExec(t, holder, "UPDATE ddl_only SET v = 'held' WHERE id = 1")
		defer commitAfter(holder, time.Second)()
		start := time.Now()
		if _, err := app.Exec(ctx, "UPDATE ddl_only SET v = 'app' WHERE id = $1", 1); err != nil {
			t.Fatalf("the application's UPDATE after %v: %v, want it to wait for the row as PostgreSQL lets it", time.Since(start), err)
		}
		if time.Since(start) < 900*time.Millisecond {
			t.Fatalf("the UPDATE did not wait (%v)", time.Since(start))
		}
	})

	t.Run("queued behind a waiting ALTER", func(t *testing.T) {
		migration, _ := guardConn(t, addr, pgtest.SuperUser, "")
		mustExec(t, holder, "BEGIN")
		mustExec(t, holder, "SELECT count(*) FROM ddl_only")
		altered := make(chan error, 1)
		go func() {
			_, err := migration.Exec(ctx, "ALTER TABLE ddl_only ADD COLUMN note text")
			altered <- err
		}()
		time.Sleep(100 * time.Millisecond) // the ALTER is in the lock queue
		var wg sync.WaitGroup
		errs := make(chan error, 4)
		for i := 0; i < 4; i++ {
			app, _ := guardConn(t, addr, pgtest.SuperUser, "")
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				for j := 0; j < 5; j++ {
					if _, err := app.Exec(ctx, "UPDATE ddl_only SET v = 'app' WHERE id = $1", 2+i); err != nil {
						errs <- err
						return
					}
					time.Sleep(50 * time.Millisecond)
				}
			}(i)
		}
		defer commitAfter(holder, time.Second)()
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Errorf("an application statement queued behind the migration's ALTER failed: %v", err)
		}
		if err := <-altered; pgCode(err) != "55P03" {
			t.Errorf("the ALTER: %v, want 55P03 after the policy's lock_timeout and a retry", err)
		}
	})

	for _, c := range []struct{ name, extra, set, want string }{
		{"PostgreSQL's default", "", "", "0"},
		{"off in the startup packet", "lock_timeout=0", "", "0"},
		{"above the maximum, by SET", "", "SET lock_timeout = '1h'", "1h"},
		{"a lower one of its own", "", "SET lock_timeout = '200ms'", "200ms"},
	} {
		t.Run("the ALTER gives up, then "+c.name+" is back", func(t *testing.T) {
			conn, notices := guardConn(t, addr, pgtest.SuperUser, c.extra)
			if c.set != "" {
				mustExec(t, conn, c.set)
			}
			var source string
			if err := conn.QueryRow(ctx, "SELECT source FROM pg_settings WHERE name = 'lock_timeout'").Scan(&source); err != nil {
				t.Fatal(err)
			}
			mustExec(t, holder, "BEGIN")
			mustExec(t, holder, "LOCK TABLE ddl_only IN ACCESS SHARE MODE")
			start := time.Now()
			_, err := conn.Exec(ctx, "ALTER TABLE ddl_only ADD COLUMN note text")
			mustExec(t, holder, "ROLLBACK")
			if pgCode(err) != "55P03" || time.Since(start) > 2*time.Second {
				t.Fatalf("ALTER: %v after %v, want 55P03 within two tries of the lock_timeout", err, time.Since(start))
			}
			var lt, after string
			if err := conn.QueryRow(ctx, "SELECT current_setting('lock_timeout'), source FROM pg_settings WHERE name = 'lock_timeout'").Scan(&lt, &after); err != nil {
				t.Fatal(err)
			}
			if lt != c.want || after != source {
				t.Fatalf("after the ALTER lock_timeout = %q from %q, want the session's %q from %q", lt, after, c.want, source)
			}
			if len(*notices) != 0 {
				t.Fatalf("notices %v: pgguard's own lock_timeout is nothing to tell the client", *notices)
			}
			// In a transaction block: for the statement alone too.
			mustExec(t, conn, "BEGIN")
			mustExec(t, conn, "ALTER TABLE ddl_only ADD COLUMN note text")
			if err := conn.QueryRow(ctx, "SHOW lock_timeout").Scan(&lt); err != nil || lt != c.want {
				t.Fatalf("in the block after the ALTER lock_timeout = %q (%v), want %q", lt, err, c.want)
			}
			mustExec(t, conn, "ROLLBACK")
		})
	}

	t.Run("a rewritten build puts the session's own back", func(t *testing.T) {
		conn, _ := guardConn(t, addr, pgtest.SuperUser, "lock_timeout=1234ms")
		defer dropIndex(t, "ddl_only_v")
		mustExec(t, conn, "CREATE INDEX ddl_only_v ON big (note)")
		var lt string
		if err := conn.QueryRow(ctx, "SHOW lock_timeout").Scan(&lt); err != nil || lt != "1234ms" {
			t.Fatalf("after the build lock_timeout = %q (%v), want the session's 1234ms", lt, err)
		}
	})
}

// The large-dml estimate of an UPDATE inside a transaction block (EXPLAIN,
// in a savepoint) uses no command id of the client's transaction and keeps
// no lock: the next row the client writes has the cmin it has directly, and
// the block holds on the table exactly the locks it holds directly.
func TestEstimateLeavesNoTrace(t *testing.T) {
	_, addr, _ := guardProxy(t, "", nil)
	ctx := context.Background()
	if err := pgExec("guard", "DROP TABLE IF EXISTS trace_cmin", "CREATE TABLE trace_cmin (id int)", "GRANT ALL ON trace_cmin TO PUBLIC"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pgExec("guard", "DROP TABLE IF EXISTS trace_cmin") })
	play := func(conn *pgx.Conn) (cmin string, locks string) {
		t.Helper()
		mustExec(t, conn, "BEGIN")
		mustExec(t, conn, "INSERT INTO trace_cmin VALUES (1)")
		// Not by key, so estimated; it changes no row, so allowed.
		mustExec(t, conn, "UPDATE big SET note = note WHERE account < 0")
		mustExec(t, conn, "INSERT INTO trace_cmin VALUES (2)")
		if err := conn.QueryRow(ctx, "SELECT cmin::text FROM trace_cmin WHERE id = 2").Scan(&cmin); err != nil {
			t.Fatal(err)
		}
		if err := conn.QueryRow(ctx, "SELECT string_agg(mode, ',' ORDER BY mode) FROM pg_locks WHERE pid = pg_backend_pid() AND relation = 'big'::regclass").Scan(&locks); err != nil {
			t.Fatal(err)
		}
		mustExec(t, conn, "ROLLBACK")
		return cmin, locks
	}
	wantCmin, wantLocks := play(connect(t, pg.DSN(pgtest.SuperUser, "guard")))
	through, _ := guardConn(t, addr, pgtest.SuperUser, "")
	if cmin, locks := play(through); cmin != wantCmin || locks != wantLocks {
		t.Fatalf("through pgguard cmin %s, locks on big %q; directly cmin %s, locks %q", cmin, locks, wantCmin, wantLocks)
	}
}

// commitAfter commits holder's transaction after d, from another goroutine;
// the function it returns waits until that is done, so that the next step
// (or the cleanup that closes holder) does not race it.
func commitAfter(holder *pgx.Conn, d time.Duration) (wait func()) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		time.Sleep(d)
		holder.Exec(context.Background(), "COMMIT")
	}()
	return func() { <-done }
}

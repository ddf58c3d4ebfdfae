package proxy

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/pgguard/pgguard/internal/testkit/pgtest"
)

// A statement that blocks writes later in an extended-protocol batch
// ([Parse/Bind/Execute SELECT 1, Parse/Bind/Execute ALTER ..., Sync], as
// pgx's exec mode and pgjdbc's executeBatch send it) gets pgguard's
// lock_timeout as it does in a multi-statement Query: set before the
// batch's first message, put back after its Sync. Each case is played
// directly against PostgreSQL and through pgguard (rtCompare): directly the
// ALTER waits for the holder ("[WAITED]"), through pgguard it fails with
// 55P03 after 300ms; whatever the session observes after the batch (SHOW,
// pg_settings' source) is what it is directly.

const btAlter = "ALTER TABLE rt_t ALTER COLUMN v SET DEFAULT 'x'"

const btSource = "SELECT setting, source FROM pg_settings WHERE name = 'lock_timeout'"

func btSame(t *testing.T, direct, proxied []string, steps ...int) {
	t.Helper()
	for _, i := range steps {
		if direct[i] != proxied[i] {
			t.Errorf("step %d:\n direct:  %s\n pgguard: %s", i, direct[i], proxied[i])
		}
	}
}

// btTimedOut checks that step i waited directly and failed fast with 55P03
// through pgguard.
func btTimedOut(t *testing.T, direct, proxied []string, i int) {
	t.Helper()
	if !strings.Contains(direct[i], "[WAITED]") {
		t.Errorf("directly the DDL did not wait for the holder (the test holds no lock?): %s", direct[i])
	}
	if !strings.Contains(proxied[i], "55P03") || strings.Contains(proxied[i], "[WAITED]") {
		t.Errorf("DDL in the batch escaped the policy's lock_timeout: %s", proxied[i])
	}
}

func TestLockTimeoutInBatch(t *testing.T) {
	t.Run("DDL second", func(t *testing.T) {
		d, p := rtCompare(t, "", []string{"@hold rt_t", "@batch SELECT 1 ;; " + btAlter, "SHOW lock_timeout", btSource})
		btTimedOut(t, d, p, 0)
		btSame(t, d, p, 1, 2)
	})
	t.Run("DDL third, DML before", func(t *testing.T) {
		d, p := rtCompare(t, "", []string{"@hold rt_t", "@batch SELECT 1 ;; UPDATE rt_u SET v = 'b' WHERE id = 1 ;; " + btAlter, "SHOW lock_timeout", btSource, "SELECT v FROM rt_u"})
		btTimedOut(t, d, p, 0)
		btSame(t, d, p, 1, 2)
		// The batch is one implicit transaction: the ALTER's failure
		// rolled back the UPDATE before it (directly the ALTER waited,
		// then succeeded, and the UPDATE stayed).
		if !strings.Contains(p[3], "DataRow a |") {
			t.Errorf("the UPDATE before the failed ALTER was not rolled back with it: %s", p[3])
		}
	})
	t.Run("succeeds, source unchanged", func(t *testing.T) {
		d, p := rtCompare(t, "", []string{"@batch SELECT 1 ;; " + btAlter, "SHOW lock_timeout", btSource})
		btSame(t, d, p, 0, 1, 2)
	})
	t.Run("BEGIN in the batch", func(t *testing.T) {
		d, p := rtCompare(t, "", []string{"@hold rt_t", "@batch BEGIN ;; SELECT 1 ;; " + btAlter, "ROLLBACK", "SHOW lock_timeout", btSource})
		btTimedOut(t, d, p, 0)
		btSame(t, d, p, 1, 2, 3)
	})
	t.Run("inside a block", func(t *testing.T) {
		d, p := rtCompare(t, "", []string{"BEGIN", "@hold rt_t", "@batch SELECT 1 ;; " + btAlter, "ROLLBACK", "SHOW lock_timeout", btSource})
		btTimedOut(t, d, p, 1)
		btSame(t, d, p, 2, 3, 4)
	})
	t.Run("inside a block, committed", func(t *testing.T) {
		d, p := rtCompare(t, "", []string{"BEGIN", "@batch SELECT 1 ;; " + btAlter, "SHOW lock_timeout", btSource, "COMMIT", "SHOW lock_timeout", btSource})
		btSame(t, d, p, 1, 2, 3, 4, 5, 6)
	})
	t.Run("client's SET 0", func(t *testing.T) {
		d, p := rtCompare(t, "", []string{"SET lock_timeout = 0", "@hold rt_t", "@batch SELECT 1 ;; " + btAlter, "SHOW lock_timeout", btSource})
		btTimedOut(t, d, p, 1)
		btSame(t, d, p, 2, 3)
	})
	t.Run("client's SET LOCAL 0 in the block", func(t *testing.T) {
		d, p := rtCompare(t, "", []string{"BEGIN", "SET LOCAL lock_timeout = 0", "@hold rt_t", "@batch SELECT 1 ;; " + btAlter, "ROLLBACK", "SHOW lock_timeout", btSource})
		btTimedOut(t, d, p, 2)
		btSame(t, d, p, 3, 4, 5)
	})
	t.Run("client's SET LOCAL 0 in the block, committed", func(t *testing.T) {
		d, p := rtCompare(t, "", []string{"BEGIN", "SET LOCAL lock_timeout = 0", "@batch SELECT 1 ;; " + btAlter, "SHOW lock_timeout", btSource, "COMMIT", "SHOW lock_timeout", btSource})
		btSame(t, d, p, 2, 3, 4, 5, 6, 7)
	})
	t.Run("client's smaller value kept", func(t *testing.T) {
		// 100ms directly and through pgguard: the same 55P03, the same
		// value after.
		d, p := rtCompare(t, "", []string{"SET lock_timeout = '100ms'", "@hold rt_t", "@batch SELECT 1 ;; " + btAlter, "SHOW lock_timeout", btSource})
		if !strings.Contains(d[1], "55P03") {
			t.Errorf("directly: %s", d[1])
		}
		btSame(t, d, p, 1, 2, 3)
	})
	t.Run("aborted block", func(t *testing.T) {
		d, p := rtCompare(t, "", []string{"BEGIN", "SELECT 1/0", "@batch SELECT 1 ;; " + btAlter, "ROLLBACK", "SHOW lock_timeout", btSource})
		btSame(t, d, p, 1, 2, 3, 4, 5)
	})
}

// A statement that blocks writes prepared in one batch and run in a later
// one (pgx's default mode prepares a batch's new statements in a batch of
// their own, then binds them) gets the lock_timeout where it runs; once its
// name is closed or prepared again as something else, a Bind of the name
// runs with the session's own: an UPDATE waiting for a row lock is not
// cancelled.
func TestLockTimeoutPreparedBatch(t *testing.T) {
	t.Run("run alone", func(t *testing.T) {
		d, p := rtCompare(t, "", []string{"@prepare s " + btAlter, "@hold rt_t", "@run s", "SHOW lock_timeout", btSource})
		btTimedOut(t, d, p, 1)
		btSame(t, d, p, 0, 2, 3)
	})
	t.Run("run behind another", func(t *testing.T) {
		d, p := rtCompare(t, "", []string{"@prepare q SELECT 1", "@prepare s " + btAlter, "@hold rt_t", "@run q s", "SHOW lock_timeout", btSource})
		btTimedOut(t, d, p, 2)
		btSame(t, d, p, 0, 1, 3, 4)
	})
	t.Run("inside a block", func(t *testing.T) {
		d, p := rtCompare(t, "", []string{"@prepare s " + btAlter, "BEGIN", "SET LOCAL lock_timeout = 0", "@hold rt_t", "@run s", "ROLLBACK", "SHOW lock_timeout", btSource})
		btTimedOut(t, d, p, 3)
		btSame(t, d, p, 4, 5, 6)
	})
	// SQL PREPARE makes a statement pgguard does not judge; a Parse of
	// the name would replace pgguard's memory of it anyway.
	t.Run("closed, then an UPDATE of the name", func(t *testing.T) {
		d, p := rtCompare(t, "", []string{"@prepare s " + btAlter, "@close s", "PREPARE s AS UPDATE rt_u SET v = 'b' WHERE id = 1", "@rowlock rt_u", "@run s"})
		btSame(t, d, p, 0, 1, 2, 3)
		if !strings.Contains(p[3], "[WAITED]") {
			t.Errorf("the UPDATE's row-lock wait was cut short: %s", p[3])
		}
	})
	t.Run("DEALLOCATE ALL, then an UPDATE of the name", func(t *testing.T) {
		d, p := rtCompare(t, "", []string{"@prepare s " + btAlter, "DEALLOCATE ALL", "PREPARE s AS UPDATE rt_u SET v = 'b' WHERE id = 1", "@rowlock rt_u", "@run s"})
		btSame(t, d, p, 0, 1, 2, 3)
	})
	t.Run("Parse of the name as an UPDATE", func(t *testing.T) {
		d, p := rtCompare(t, "", []string{"@prepare s " + btAlter, "@close s", "@prepare s UPDATE rt_u SET v = 'b' WHERE id = 1", "@rowlock rt_u", "@run s"})
		btSame(t, d, p, 0, 1, 2, 3)
	})
	t.Run("failed Parse of the name keeps it", func(t *testing.T) {
		// 42P05: the name is in use; the ALTER stays under it.
		d, p := rtCompare(t, "", []string{"@prepare s " + btAlter, "@prepare s SELECT 1", "@hold rt_t", "@run s"})
		btSame(t, d, p, 0, 1)
		btTimedOut(t, d, p, 2)
	})
}

// In mode warn pgguard sets nothing: the batch waits as it does directly.
func TestLockTimeoutInBatchWarnMode(t *testing.T) {
	steps := []string{"@hold rt_t", "@batch SELECT 1 ;; " + btAlter, "SHOW lock_timeout", btSource}
	rtSetup(t)
	_, addr, _ := guardProxy(t, "mode: warn\n"+rtRules, nil)
	direct := rtPlay(t, pg.Addr(), steps)
	rtSetup(t)
	proxied := rtPlay(t, addr, steps)
	t.Logf("direct:\n   %s\npgguard:\n   %s", strings.Join(direct, "\n   "), strings.Join(proxied, "\n   "))
	if !strings.Contains(proxied[0], "[WAITED]") || strings.Contains(proxied[0], "55P03") {
		t.Errorf("mode warn: pgguard changed the batch's lock_timeout: %s", proxied[0])
	}
	btSame(t, direct, proxied, 1, 2)
}

// pgx's Batch in exec mode sends the shape above; a holder of ACCESS SHARE
// on the table makes the ALTER wait directly.
func TestLockTimeoutInPgxBatch(t *testing.T) {
	rtSetup(t)
	_, addr, _ := guardProxy(t, rtRules, nil)
	ctx := context.Background()
	for _, mode := range []string{"exec", "cache_statement", "cache_describe", "describe_exec"} {
		t.Run(mode, func(t *testing.T) {
			conn, _ := guardConn(t, addr, pgtest.SuperUser, "default_query_exec_mode="+mode)
			holder := connect(t, pg.DSN(pgtest.SuperUser, "guard"))
			mustExec(t, holder, "BEGIN")
			mustExec(t, holder, "SELECT * FROM rt_t")
			defer holder.Exec(ctx, "ROLLBACK")
			b := &pgx.Batch{}
			b.Queue("SELECT 1")
			b.Queue("SELECT 2")
			b.Queue(btAlter)
			start := time.Now()
			wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			defer cancel()
			err := conn.SendBatch(wctx, b).Close()
			var pe *pgconn.PgError
			if !errors.As(err, &pe) || pe.Code != "55P03" {
				t.Fatalf("batch: %v after %s, want 55P03 after pgguard's lock_timeout", err, time.Since(start))
			}
			el := time.Since(start)
			t.Logf("%s: 55P03 after %s", mode, el)
			if el > 2*time.Second {
				t.Errorf("55P03 after %s", el)
			}
			var lt string
			if err := conn.QueryRow(ctx, "SHOW lock_timeout").Scan(&lt); err != nil || lt != "0" {
				t.Errorf("lock_timeout after the batch = %q, %v; want the session's own 0", lt, err)
			}
		})
	}
}

// A batch whose first Parse looks alone to pgguard (nothing but a Bind, a
// Describe and an Execute behind it) but whose Bind runs another prepared
// statement that blocks writes: the lock_timeout set for the batch is put
// back after its Sync, and the statement's own paths (the retry of a DDL
// alone in its batch, the lift around a CONCURRENTLY rewrite), which would
// take the Sync for themselves, are not taken: the batch answers, without
// a wait, and the session's own lock_timeout is back.
func TestLockTimeoutBatchBindsAnother(t *testing.T) {
	for _, first := range []string{"SELECT 1", "ALTER TABLE rt_u ALTER COLUMN v SET DEFAULT 'y'", "CREATE INDEX rt_t_v ON rt_t (v)"} {
		t.Run(first, func(t *testing.T) {
			rtSetup(t)
			defer pgExec("guard", "DROP INDEX IF EXISTS rt_t_v")
			_, addr, _ := guardProxy(t, "lock_timeout: 300ms\n", nil)
			c := rawConnect(t, addr, "guard")
			c.send(&pgproto3.Parse{Name: "s", Query: btAlter}, &pgproto3.Describe{ObjectType: 'S', Name: "s"}, &pgproto3.Sync{})
			c.until(1)
			holder := connect(t, pg.DSN(pgtest.SuperUser, "guard"))
			mustExec(t, holder, "BEGIN")
			mustExec(t, holder, "SELECT * FROM rt_t")
			defer holder.Exec(context.Background(), "ROLLBACK")
			start := time.Now()
			c.send(&pgproto3.Parse{Query: first}, &pgproto3.Describe{ObjectType: 'S'},
				&pgproto3.Bind{PreparedStatement: "s"}, &pgproto3.Execute{}, &pgproto3.Sync{})
			got := c.until(1)
			t.Logf("%s: %q", time.Since(start), got)
			if !has(got, "ErrorResponse ERROR") || time.Since(start) > 3*time.Second {
				t.Errorf("the ALTER bound in the batch waited: %q after %s", got, time.Since(start))
			}
			c.send(&pgproto3.Query{String: "SHOW lock_timeout"})
			if got := c.until(1); !has(got, "DataRow 0") {
				t.Errorf("lock_timeout after the batch: %q, want the session's own 0", got)
			}
		})
	}
}

// Under lock_timeout_scope session the session starts with the policy's
// value, which a batch's DDL finds in place: it fails after 300ms, and
// nothing is put back (SHOW gives the value the session started with).
func TestLockTimeoutInBatchScopeSession(t *testing.T) {
	rtSetup(t)
	_, addr, _ := guardProxy(t, "lock_timeout_scope: session\n"+rtRules, nil)
	p := rtPlay(t, addr, []string{"@hold rt_t", "@batch SELECT 1 ;; " + btAlter, "SHOW lock_timeout", btSource})
	t.Logf("pgguard:\n   %s", strings.Join(p, "\n   "))
	if !strings.Contains(p[0], "55P03") || strings.Contains(p[0], "[WAITED]") {
		t.Errorf("DDL in the batch escaped the session's lock_timeout: %s", p[0])
	}
	if !strings.Contains(p[1], "DataRow 300ms") {
		t.Errorf("lock_timeout after the batch: %s", p[1])
	}
}

// A batch whose first message is the Bind of a cached UPDATE (judged under
// the block's ACCESS EXCLUSIVE lock, which may ask the catalog) and whose
// second binds a prepared ALTER: the UPDATE's judgement goes first, then
// the batch's lock_timeout; nothing hangs, and the ALTER behind the holder
// gets 55P03. Both statements are prepared by earlier batches (pgx's
// statement cache), so this batch sends Binds alone.
func TestLockTimeoutBatchOfCachedStatementsUnderLock(t *testing.T) {
	rtSetup(t)
	_, addr, _ := guardProxy(t, rtRules, nil)
	ctx := context.Background()
	conn, _ := guardConn(t, addr, pgtest.SuperUser, "default_query_exec_mode=cache_statement")
	const upd = "UPDATE rt_u SET v = v WHERE id = $1"
	// Prepared (and cached) in earlier transactions.
	if _, err := conn.Exec(ctx, upd, 1); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Prepare(ctx, "rt_alter", btAlter); err != nil {
		t.Fatal(err)
	}
	holder := connect(t, pg.DSN(pgtest.SuperUser, "guard"))
	mustExec(t, holder, "BEGIN")
	mustExec(t, holder, "SELECT * FROM rt_t")
	defer holder.Exec(ctx, "ROLLBACK")
	mustExec(t, conn, "BEGIN")
	defer conn.Exec(ctx, "ROLLBACK")
	mustExec(t, conn, "LOCK TABLE rt_u IN ACCESS EXCLUSIVE MODE")
	b := &pgx.Batch{}
	b.Queue(upd, 1)
	b.Queue("rt_alter")
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	start := time.Now()
	err := conn.SendBatch(wctx, b).Close()
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || pe.Code != "55P03" {
		t.Fatalf("batch: %v after %s, want the UPDATE to run (rt_u is small) and the ALTER to get 55P03 after pgguard's lock_timeout", err, time.Since(start))
	}
}

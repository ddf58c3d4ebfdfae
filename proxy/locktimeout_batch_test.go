package proxy

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
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
	for _, mode := range []string{"exec"} {
		t.Run(mode, func(t *testing.T) {
			conn, _ := guardConn(t, addr, pgtest.SuperUser, "default_query_exec_mode="+mode)
			holder := connect(t, pg.DSN(pgtest.SuperUser, "guard"))
			mustExec(t, holder, "BEGIN")
			mustExec(t, holder, "SELECT * FROM rt_t")
			defer holder.Exec(ctx, "ROLLBACK")
			b := &pgx.Batch{}
			b.Queue("SELECT 1")
			b.Queue("UPDATE rt_u SET v = 'c' WHERE id = 1")
			b.Queue(btAlter)
			start := time.Now()
			wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			defer cancel()
			err := conn.SendBatch(wctx, b).Close()
			var pe *pgconn.PgError
			if !errors.As(err, &pe) || pe.Code != "55P03" {
				t.Fatalf("batch: %v after %s, want 55P03 after pgguard's lock_timeout", err, time.Since(start))
			}
			if el := time.Since(start); el > 2*time.Second {
				t.Errorf("55P03 after %s", el)
			}
			var lt string
			if err := conn.QueryRow(ctx, "SHOW lock_timeout").Scan(&lt); err != nil || lt != "0" {
				t.Errorf("lock_timeout after the batch = %q, %v; want the session's own 0", lt, err)
			}
		})
	}
}

package proxy

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgguard/pgguard/internal/testkit/pgtest"
)

// rt20dLockFunctions: a function, an operator and a view whose use takes
// ACCESS EXCLUSIVE on big.
func rt20dLockFunctions(t *testing.T) {
	t.Helper()
	if err := pgExec("guard",
		"CREATE OR REPLACE FUNCTION rt20d_lock() RETURNS int LANGUAGE plpgsql AS $$ BEGIN LOCK TABLE big IN ACCESS EXCLUSIVE MODE; RETURN 1; END $$",
		"CREATE OR REPLACE FUNCTION rt20d_lock_op(int, int) RETURNS int LANGUAGE plpgsql AS $$ BEGIN LOCK TABLE big IN ACCESS EXCLUSIVE MODE; RETURN $1 + $2; END $$",
		"DROP OPERATOR IF EXISTS ### (int, int)",
		"CREATE OPERATOR ### (LEFTARG = int, RIGHTARG = int, FUNCTION = rt20d_lock_op)",
		"CREATE OR REPLACE VIEW rt20d_lock_v AS SELECT rt20d_lock() AS x",
	); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		pgExec("guard", "DROP VIEW IF EXISTS rt20d_lock_v", "DROP OPERATOR IF EXISTS ### (int, int)", "DROP FUNCTION IF EXISTS rt20d_lock(), rt20d_lock_op(int, int)")
	})
}

// wantExclusiveRefusal: err is large-dml's refusal of a data change under
// the transaction's ACCESS EXCLUSIVE lock.
func wantExclusiveRefusal(t *testing.T, what string, err error) {
	t.Helper()
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || pe.Code != "42501" || !strings.HasPrefix(pe.Message, "pgguard: large-dml") {
		t.Errorf("%s: %v; want large-dml's refusal, as after LOCK TABLE big in the block (TestRedteamDMLUnderExclusiveLockFromFunction)", what, err)
	}
}

// TestRedteamLockingCallBeforeUpdateInOneRound: the call that takes
// ACCESS EXCLUSIVE on big and the UPDATE of big in one Query, or in one
// extended batch of a transaction block. The pg_locks question before the
// UPDATE is asked before the round reaches the server, so its answer
// predates the call: no lock, and the UPDATE under the lock passes, where
// the same two statements sent one by one are refused. (Not fixed: only
// a refusal of every UPDATE after any call in the same round would close
// it, which refuses an application's safe batches.)
func TestRedteamLockingCallBeforeUpdateInOneRound(t *testing.T) {
	t.Skip("redteam: a user function that locks big and an UPDATE of big in one Query or one extended batch: the pg_locks answer predates the call, the UPDATE under ACCESS EXCLUSIVE passes")
	_, addr, _ := guardProxy(t, "", nil)
	rt20dLockFunctions(t)
	ctx := context.Background()
	const update = "UPDATE big SET note = note WHERE id = 1"
	for _, c := range []struct {
		name  string
		begin bool
		batch bool
	}{
		{"one Query, autocommit", false, false},
		{"one Query in a block", true, false},
		{"one extended batch in a block", true, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			conn, _ := guardConn(t, addr, pgtest.SuperUser, "")
			defer conn.Exec(ctx, "ROLLBACK")
			if c.begin {
				mustExec(t, conn, "BEGIN")
			}
			var err error
			if c.batch {
				b := &pgx.Batch{}
				b.Queue("SELECT rt20d_lock()")
				b.Queue(update)
				err = conn.SendBatch(ctx, b).Close()
			} else {
				_, err = conn.Exec(ctx, "SELECT rt20d_lock(); "+update)
			}
			wantExclusiveRefusal(t, c.name, err)
		})
	}
}

// TestRedteamLockingCodeWithoutCallText: user code that takes ACCESS
// EXCLUSIVE on big without a name( in the statement's text: an operator
// backed by a function, a view whose query calls one (SELECT * FROM v,
// TABLE v). CallsUserFunction does not see them (as its comment says of
// views), so the memory of the transaction learns nothing and the UPDATE
// under the lock passes. (Not fixed: the text trigger cannot see them
// without asking the server about every operator and relation.)
func TestRedteamLockingCodeWithoutCallText(t *testing.T) {
	t.Skip("redteam: an operator backed by a locking function, or a view calling one (SELECT * FROM v, TABLE v), before an UPDATE in the block: no pg_locks question, the UPDATE under ACCESS EXCLUSIVE passes")
	_, addr, _ := guardProxy(t, "", nil)
	rt20dLockFunctions(t)
	ctx := context.Background()
	for _, call := range []string{"SELECT 1 ### 1", "SELECT * FROM rt20d_lock_v", "TABLE rt20d_lock_v"} {
		t.Run(call, func(t *testing.T) {
			conn, _ := guardConn(t, addr, pgtest.SuperUser, "")
			mustExec(t, conn, "BEGIN")
			defer conn.Exec(ctx, "ROLLBACK")
			mustExec(t, conn, call)
			_, err := conn.Exec(ctx, "UPDATE big SET note = note WHERE id = 1")
			wantExclusiveRefusal(t, call, err)
		})
	}
}

// TestRedteamCachedUpdateUnderExclusiveLock: pgx's default statement
// cache prepares UPDATE big ... WHERE id = $1 once; in a later
// transaction only its Bind and Execute reach pgguard. After a call that
// takes ACCESS EXCLUSIVE on big (or LOCK TABLE big itself) the UPDATE is
// never judged, so neither the pg_locks question nor the memory of the
// transaction stops it; the same UPDATE prepared in that transaction is
// refused. (Not fixed: an application's Binds of named UPDATEs and
// DELETEs would have to be judged while the memory holds anything, a
// change to the Bind fast path.)
func TestRedteamCachedUpdateUnderExclusiveLock(t *testing.T) {

	_, addr, _ := guardProxy(t, "", nil)
	rt20dLockFunctions(t)
	ctx := context.Background()
	for _, lock := range []string{"SELECT rt20d_lock()", "LOCK TABLE big IN ACCESS EXCLUSIVE MODE"} {
		t.Run(lock, func(t *testing.T) {
			conn, _ := guardConn(t, addr, pgtest.SuperUser, "")
			for i := 0; i < 2; i++ {
				mustExec(t, conn, "BEGIN")
				if i == 1 {
					mustExec(t, conn, lock)
				}
				_, err := conn.Exec(ctx, "UPDATE big SET note = note WHERE id = $1", 1)
				conn.Exec(ctx, "ROLLBACK")
				if i == 0 && err != nil {
					t.Fatal(err)
				}
				if i == 1 {
					wantExclusiveRefusal(t, lock+", then the cached UPDATE", err)
				}
			}
		})
	}
}

// TestRedteamProbeInAbortedTransaction (holds): after a locking call and
// an error, the UPDATE gets the server's own 25P02, the ROLLBACK works and
// the session goes on.
func TestRedteamProbeInAbortedTransaction(t *testing.T) {
	_, addr, _ := guardProxy(t, "", nil)
	rt20dLockFunctions(t)
	ctx := context.Background()
	conn, _ := guardConn(t, addr, pgtest.SuperUser, "")
	mustExec(t, conn, "BEGIN")
	mustExec(t, conn, "SELECT rt20d_lock()")
	if _, err := conn.Exec(ctx, "SELECT 1/0"); err == nil {
		t.Fatal("1/0 ran")
	}
	_, err := conn.Exec(ctx, "UPDATE big SET note = note WHERE id = 1")
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || pe.Code != "25P02" {
		t.Errorf("UPDATE in the aborted block: %v; want the server's 25P02", err)
	}
	mustExec(t, conn, "ROLLBACK")
	var n int
	if err := conn.QueryRow(ctx, "SELECT 1").Scan(&n); err != nil || n != 1 {
		t.Errorf("after ROLLBACK: %v %d", err, n)
	}
}

package proxy

import (
	"context"
	"testing"

	"github.com/pgguard/pgguard/internal/testkit/pgtest"
)

// Red team (issue 20): an UPDATE of a large table whose ACCESS EXCLUSIVE
// lock the open transaction took by a route the memory of the
// transaction does not follow. PostgreSQL holds the lock either way, so
// every reader and writer of big waits for the transaction, as after
// LOCK TABLE big (TestDMLUnderExclusiveLockRefused).
func TestRedteamDMLUnderExclusiveLockFromDO(t *testing.T) {
	_, addr, _ := guardProxy(t, "", nil)
	ctx := context.Background()
	const update = "UPDATE big SET note = note WHERE id = 1"
	for _, c := range []struct {
		name   string
		before []string
		refuse bool
	}{
		{"LOCK TABLE in a DO block", []string{"DO $$ BEGIN LOCK TABLE big IN ACCESS EXCLUSIVE MODE; END $$"}, true},
		{"ALTER TABLE in a DO block", []string{"DO $$ BEGIN ALTER TABLE big ALTER COLUMN note SET DEFAULT 'x'; END $$"}, true},
		{"DO in a DO block", []string{"DO $o$ BEGIN DO $i$ BEGIN LOCK TABLE big IN ACCESS EXCLUSIVE MODE; END $i$; END $o$"}, true},
		// The reverse: the lock is gone with its savepoint, the UPDATE
		// blocks nobody for long.
		{"DO block rolled back to a savepoint", []string{"SAVEPOINT a", "DO $$ BEGIN LOCK TABLE big IN ACCESS EXCLUSIVE MODE; END $$", "ROLLBACK TO a"}, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			conn, _ := guardConn(t, addr, pgtest.SuperUser, "")
			mustExec(t, conn, "BEGIN")
			defer conn.Exec(ctx, "ROLLBACK")
			for _, q := range c.before {
				mustExec(t, conn, q)
			}
			_, err := conn.Exec(ctx, update)
			if c.refuse {
				wantRefusal(t, err, "large-dml")
			} else if err != nil {
				t.Fatalf("%s: %v", update, err)
			}
		})
	}
}

// A function the application calls takes the lock: the call is a plain
// SELECT, which pgguard does not parse. Inside a transaction block a
// statement that calls a function that is not built in
// (policy.RunsUserCode) is judged instead, and the memory of the
// transaction learns that the server may hold locks no statement named:
// before the transaction's next UPDATE or DELETE the server's pg_locks
// says which. Each case: the functions, what runs in the transaction
// before the UPDATE (with args: in the extended protocol), and whether
// the UPDATE is refused, as after LOCK TABLE big.
func TestRedteamDMLUnderExclusiveLockFromFunction(t *testing.T) {
	_, addr, _ := guardProxy(t, "", nil)
	ctx := context.Background()
	const update = "UPDATE big SET note = note WHERE id = 1"
	if err := pgExec("guard",
		"CREATE OR REPLACE FUNCTION rt20b_lock_big() RETURNS void LANGUAGE plpgsql AS $$ BEGIN LOCK TABLE big IN ACCESS EXCLUSIVE MODE; END $$",
		"CREATE OR REPLACE FUNCTION rt20b_lock_big_sql(int) RETURNS int LANGUAGE sql AS $$ LOCK TABLE big IN ACCESS EXCLUSIVE MODE; SELECT $1 $$",
		"CREATE OR REPLACE FUNCTION rt20b_alter_big() RETURNS void LANGUAGE plpgsql AS $$ BEGIN ALTER TABLE big ALTER COLUMN note SET DEFAULT 'x'; END $$",
		"CREATE OR REPLACE FUNCTION rt20b_outer() RETURNS int LANGUAGE plpgsql AS $$ BEGIN PERFORM rt20b_lock_big(); RETURN 1; END $$",
		"CREATE OR REPLACE FUNCTION rt20b_dyn() RETURNS void LANGUAGE plpgsql AS $$ BEGIN EXECUTE 'LOCK TABLE ' || 'big'; END $$",
		"CREATE OR REPLACE PROCEDURE rt20b_lock_proc() LANGUAGE plpgsql AS $$ BEGIN LOCK TABLE big IN ACCESS EXCLUSIVE MODE; END $$",
		"CREATE OR REPLACE FUNCTION rt20b_harmless() RETURNS int LANGUAGE plpgsql AS $$ BEGIN RETURN 1; END $$",
	); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		pgExec("guard", "DROP FUNCTION IF EXISTS rt20b_lock_big(), rt20b_lock_big_sql(int), rt20b_alter_big(), rt20b_outer(), rt20b_dyn(), rt20b_harmless()",
			"DROP PROCEDURE IF EXISTS rt20b_lock_proc()")
	})
	type step struct {
		sql  string
		args []any
	}
	for _, c := range []struct {
		name    string
		prepare string // before BEGIN
		before  []step
		refuse  bool
	}{
		{"PL/pgSQL LOCK TABLE", "", []step{{sql: "SELECT rt20b_lock_big()"}}, true},
		{"SQL LOCK TABLE, extended protocol", "", []step{{sql: "SELECT rt20b_lock_big_sql($1)", args: []any{1}}}, true},
		{"ALTER TABLE in the body", "", []step{{sql: "SELECT rt20b_alter_big()"}}, true},
		{"nested call", "", []step{{sql: "SELECT rt20b_outer()"}}, true},
		{"dynamic EXECUTE", "", []step{{sql: "SELECT rt20b_dyn()"}}, true},
		{"CALL of a procedure", "", []step{{sql: "CALL rt20b_lock_proc()"}}, true},
		{"call in a WHERE", "", []step{{sql: "SELECT 1 WHERE rt20b_lock_big() IS NULL"}}, true},
		{"EXECUTE of a prepared call", "PREPARE rt20b_p AS SELECT rt20b_lock_big()", []step{{sql: "EXECUTE rt20b_p"}}, true},
		{"schema-qualified call", "", []step{{sql: "SELECT public.rt20b_lock_big()"}}, true},
		// The reverse: the server holds no such lock.
		{"a function that locks nothing", "", []step{{sql: "SELECT rt20b_harmless()"}}, false},
		{"lock rolled back to a savepoint", "", []step{{sql: "SAVEPOINT a"}, {sql: "SELECT rt20b_lock_big()"}, {sql: "ROLLBACK TO a"}}, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			conn, _ := guardConn(t, addr, pgtest.SuperUser, "")
			if c.prepare != "" {
				mustExec(t, conn, c.prepare)
			}
			mustExec(t, conn, "BEGIN")
			defer conn.Exec(ctx, "ROLLBACK")
			for _, s := range c.before {
				if _, err := conn.Exec(ctx, s.sql, s.args...); err != nil {
					t.Fatalf("%s: %v", s.sql, err)
				}
			}
			_, err := conn.Exec(ctx, update)
			if c.refuse {
				wantRefusal(t, err, "large-dml")
			} else if err != nil {
				t.Fatalf("%s: %v", update, err)
			}
		})
	}
}

// A call pgx's statement cache runs again in a later transaction: only
// Bind and Execute reach pgguard there, no Parse.
func TestRedteamDMLUnderExclusiveLockFromCachedCall(t *testing.T) {
	_, addr, _ := guardProxy(t, "", nil)
	ctx := context.Background()
	if err := pgExec("guard", "CREATE OR REPLACE FUNCTION rt20b_lock_big_c(int) RETURNS int LANGUAGE plpgsql AS $$ BEGIN LOCK TABLE big IN ACCESS EXCLUSIVE MODE; RETURN $1; END $$"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pgExec("guard", "DROP FUNCTION IF EXISTS rt20b_lock_big_c(int)") })
	conn, _ := guardConn(t, addr, pgtest.SuperUser, "")
	for i := 0; i < 2; i++ {
		mustExec(t, conn, "BEGIN")
		if _, err := conn.Exec(ctx, "SELECT rt20b_lock_big_c($1)", i); err != nil {
			t.Fatal(err)
		}
		_, err := conn.Exec(ctx, "UPDATE big SET note = note WHERE id = 1")
		conn.Exec(ctx, "ROLLBACK")
		wantRefusal(t, err, "large-dml")
	}
}

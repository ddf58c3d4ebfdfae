package proxy

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/pgguard/pgguard/internal/testkit/pgtest"
)

// lock_timeout for DDL only, whatever the Query around the DDL does: these
// shapes were found by a red-team session that had not seen the change
// (BEGIN, COMMIT, SAVEPOINT, ROLLBACK TO, SET and EXECUTE in the same Query
// as the DDL). Each is played directly against PostgreSQL and through
// pgguard; a step "@hold T" makes another session hold ACCESS SHARE on T for
// 2s (so that a DDL on T waits), "@rowlock T" a row lock; "@xmin" reports
// whether the session's backend has a snapshot (backend_xmin), seen from
// another session; "@wait" waits for the holders to let go.

const rtRules = "lock_timeout: 300ms\nlock_timeout_retries: {attempts: 1}\n"

func rtSetup(t *testing.T) {
	t.Helper()
	enforceDatabase(t)
	if err := pgExec("guard",
		"DROP TABLE IF EXISTS rt_t, rt_u CASCADE",
		"CREATE TABLE rt_t (id int PRIMARY KEY, v text)",
		"INSERT INTO rt_t VALUES (1, 'a')",
		"CREATE TABLE rt_u (id int PRIMARY KEY, v text)",
		"INSERT INTO rt_u VALUES (1, 'a')",
		"GRANT ALL ON rt_t, rt_u TO PUBLIC",
	); err != nil {
		t.Fatal(err)
	}
}

// rtPlay plays steps on a raw session at addr and returns a transcript.
func rtPlay(t *testing.T, addr string, steps []string) []string {
	t.Helper()
	ctx := context.Background()
	c := rawConnect(t, addr, "guard")
	var pid string
	c.send(&pgproto3.Query{String: "SELECT pg_backend_pid()"})
	for _, m := range c.until(1) {
		if strings.HasPrefix(m, "DataRow ") {
			pid = strings.TrimPrefix(m, "DataRow ")
		}
	}
	var out []string
	var release []func()
	defer func() {
		for _, r := range release {
			r()
		}
	}()
	for _, s := range steps {
		switch {
		case strings.HasPrefix(s, "@hold "):
			holder := connect(t, pg.DSN(pgtest.SuperUser, "guard"))
			mustExec(t, holder, "BEGIN")
			mustExec(t, holder, "LOCK TABLE "+strings.TrimPrefix(s, "@hold ")+" IN ACCESS SHARE MODE")
			done := make(chan struct{})
			go func() { time.Sleep(2 * time.Second); holder.Exec(ctx, "COMMIT"); close(done) }()
			release = append(release, func() { <-done })
			continue
		case strings.HasPrefix(s, "@rowlock "):
			holder := connect(t, pg.DSN(pgtest.SuperUser, "guard"))
			mustExec(t, holder, "BEGIN")
			mustExec(t, holder, "SELECT 1 FROM "+strings.TrimPrefix(s, "@rowlock ")+" WHERE id = 1 FOR UPDATE")
			done := make(chan struct{})
			go func() { time.Sleep(2 * time.Second); holder.Exec(ctx, "COMMIT"); close(done) }()
			release = append(release, func() { <-done })
			continue
		case s == "@xmin":
			other := connect(t, pg.DSN(pgtest.SuperUser, "guard"))
			var xmin, xid *string
			other.QueryRow(ctx, "SELECT backend_xmin::text, backend_xid::text FROM pg_stat_activity WHERE pid = "+pid).Scan(&xmin, &xid)
			out = append(out, fmt.Sprintf("@xmin set=%v xid=%v", xmin != nil, xid != nil))
			continue
		case s == "@wait":
			for _, r := range release {
				r()
			}
			release = nil
			continue
		}
		start := time.Now()
		if b, ok := strings.CutPrefix(s, "@batch "); ok {
			// One extended-protocol batch in one write, as pgx's exec mode
			// and pgjdbc's executeBatch send it: Parse, Bind, Describe,
			// Execute of the unnamed statement for each, one Sync.
			for _, q := range strings.Split(b, " ;; ") {
				c.fe.Send(&pgproto3.Parse{Query: q})
				c.fe.Send(&pgproto3.Bind{})
				c.fe.Send(&pgproto3.Describe{ObjectType: 'P'})
				c.fe.Send(&pgproto3.Execute{})
			}
			c.send(&pgproto3.Sync{})
		} else if b, ok := strings.CutPrefix(s, "@prepare "); ok {
			// A named statement prepared in a batch of its own, as pgx
			// prepares a batch's statements: "@prepare NAME SQL".
			name, q, _ := strings.Cut(b, " ")
			c.send(&pgproto3.Parse{Name: name, Query: q}, &pgproto3.Describe{ObjectType: 'S', Name: name}, &pgproto3.Sync{})
		} else if b, ok := strings.CutPrefix(s, "@run "); ok {
			// Named statements run in one batch: "@run NAME NAME ...".
			for _, name := range strings.Fields(b) {
				c.fe.Send(&pgproto3.Bind{PreparedStatement: name})
				c.fe.Send(&pgproto3.Describe{ObjectType: 'P'})
				c.fe.Send(&pgproto3.Execute{})
			}
			c.send(&pgproto3.Sync{})
		} else if name, ok := strings.CutPrefix(s, "@close "); ok {
			c.send(&pgproto3.Close{ObjectType: 'S', Name: name}, &pgproto3.Sync{})
		} else {
			c.send(&pgproto3.Query{String: s})
		}
		got := c.until(1)
		line := s + " => " + strings.Join(got, " | ")
		if time.Since(start) > 1500*time.Millisecond {
			line += "  [WAITED]"
		}
		out = append(out, line)
	}
	return out
}

func rtCompare(t *testing.T, name string, steps []string) (direct, proxied []string) {
	t.Helper()
	rtSetup(t)
	_, addr, _ := guardProxy(t, rtRules, nil)
	direct = rtPlay(t, pg.Addr(), steps)
	rtSetup(t)
	proxied = rtPlay(t, addr, steps)
	t.Logf("%s\n direct:\n   %s\n pgguard:\n   %s", name, strings.Join(direct, "\n   "), strings.Join(proxied, "\n   "))
	return
}

func TestLockTimeoutFollowsTheQuery(t *testing.T) {
	const alter = "ALTER TABLE rt_t ALTER COLUMN v SET DEFAULT 'x'"
	same := func(t *testing.T, direct, proxied []string, i int) {
		t.Helper()
		if direct[i] != proxied[i] {
			t.Errorf("step %d:\n direct:  %s\n pgguard: %s", i, direct[i], proxied[i])
		}
	}
	timedOut := func(t *testing.T, proxied []string, i int) {
		t.Helper()
		if !strings.Contains(proxied[i], "55P03") {
			t.Errorf("DDL escaped the policy's lock_timeout: %s", proxied[i])
		}
	}
	// Or refused before anything ran, with the recipe to send the setting
	// and the DDL separately.
	timedOutOrRefused := func(t *testing.T, proxied []string, i int) {
		t.Helper()
		if !strings.Contains(proxied[i], "55P03") && !strings.Contains(proxied[i], "42501 pgguard: lock-timeout") {
			t.Errorf("DDL escaped the policy's lock_timeout: %s", proxied[i])
		}
	}
	// 1. A plain SET above max_lock_timeout before the DDL in one Query
	// would let the DDL wait an hour: refused. One within the maximum is the
	// session's after the Query, as directly (the restore keeps it).
	t.Run("SET 1h; DDL", func(t *testing.T) {
		_, p := rtCompare(t, "", []string{"@hold rt_t", "SET lock_timeout = '1h'; " + alter, "SHOW lock_timeout"})
		timedOutOrRefused(t, p, 0)
	})
	t.Run("SET 2s; DDL keeps 2s", func(t *testing.T) {
		d, p := rtCompare(t, "", []string{"SET lock_timeout = '2s'; " + alter, "SHOW lock_timeout", "SELECT source FROM pg_settings WHERE name = 'lock_timeout'"})
		same(t, d, p, 1)
		same(t, d, p, 2)
	})
	// 2. The restore chosen at idle (session SET/RESET) runs inside the block
	// the Query opened; the client's ROLLBACK undoes it: the session keeps
	// pgguard's 300ms (source session) for good.
	t.Run("BEGIN; DDL then ROLLBACK", func(t *testing.T) {
		d, p := rtCompare(t, "", []string{"BEGIN; " + alter, "ROLLBACK", "SHOW lock_timeout", "SELECT source FROM pg_settings WHERE name = 'lock_timeout'"})
		same(t, d, p, 2)
		same(t, d, p, 3)
	})
	// 3. SET LOCAL given inside the block, ended by the same Query: the DDL
	// runs with the session's own (off).
	t.Run("COMMIT; DDL", func(t *testing.T) {
		_, p := rtCompare(t, "", []string{"BEGIN", "@hold rt_t", "COMMIT; " + alter})
		timedOut(t, p, 1)
	})
	t.Run("ROLLBACK TO SAVEPOINT; DDL", func(t *testing.T) {
		_, p := rtCompare(t, "", []string{"BEGIN", "SAVEPOINT s", "@hold rt_t", "ROLLBACK TO SAVEPOINT s; " + alter, "ROLLBACK"})
		timedOutOrRefused(t, p, 2)
	})
	// 4. SET LOCAL given at the block's level, restore given inside the
	// savepoint the Query opened: ROLLBACK TO leaves pgguard's 300ms for the
	// rest of the block (application statements get cancelled).
	t.Run("SAVEPOINT; DDL then ROLLBACK TO", func(t *testing.T) {
		d, p := rtCompare(t, "", []string{"BEGIN", "SAVEPOINT s; " + alter, "ROLLBACK TO SAVEPOINT s", "SHOW lock_timeout", "ROLLBACK"})
		same(t, d, p, 3)
	})
	t.Run("SAVEPOINT; failed DDL then ROLLBACK TO", func(t *testing.T) {
		d, p := rtCompare(t, "", []string{"BEGIN", "@hold rt_t", "SAVEPOINT s; " + alter, "ROLLBACK TO SAVEPOINT s", "SHOW lock_timeout", "@wait", "ROLLBACK"})
		same(t, d, p, 3)
	})
	// 5. pg_settings.source after a DDL in a block is what it is directly.
	t.Run("source in block after DDL", func(t *testing.T) {
		d, p := rtCompare(t, "", []string{"BEGIN", alter, "SELECT setting, source FROM pg_settings WHERE name = 'lock_timeout'", "ROLLBACK"})
		same(t, d, p, 2)
	})
	// 5b. The same before LOCK TABLE, the first statement of a REPEATABLE
	// READ block: pgguard asks with SHOW (no snapshot), which gives no
	// source; the restore must not leave 'session' where there was none
	// (found by the wire harness), nor drop one the client set.
	t.Run("source in block after LOCK TABLE", func(t *testing.T) {
		d, p := rtCompare(t, "", []string{"BEGIN ISOLATION LEVEL REPEATABLE READ", "LOCK TABLE rt_t IN SHARE MODE", "SELECT setting, source FROM pg_settings WHERE name = 'lock_timeout'", "ROLLBACK",
			"SELECT setting, source FROM pg_settings WHERE name = 'lock_timeout'"})
		same(t, d, p, 2)
		same(t, d, p, 4)
	})
	t.Run("source in block after SET and LOCK TABLE", func(t *testing.T) {
		d, p := rtCompare(t, "", []string{"SET lock_timeout = 0", "BEGIN ISOLATION LEVEL REPEATABLE READ", "LOCK TABLE rt_t IN SHARE MODE", "SELECT setting, source FROM pg_settings WHERE name = 'lock_timeout'", "COMMIT",
			"SELECT setting, source FROM pg_settings WHERE name = 'lock_timeout'"})
		same(t, d, p, 3)
		same(t, d, p, 5)
	})
	// 6. An application statement beside a DDL in one Query runs with
	// pgguard's value: a row-lock wait is cancelled.
	t.Run("UPDATE row wait; DDL", func(t *testing.T) {
		t.Skip("known gap, no sound fix (README, lock_timeout: \"Not covered\"): pgguard sets lock_timeout before the whole Query, so a statement beside the DDL in it gets it too; splitting the Query would end its implicit transaction early, and injecting SET statements into it changes current_query(), error positions and the CommandComplete stream the client sees")
		_, p := rtCompare(t, "", []string{"@rowlock rt_u", "UPDATE rt_u SET v = 'b' WHERE id = 1; " + alter})
		if strings.Contains(p[0], "55P03") {
			t.Errorf("application UPDATE cancelled by pgguard's lock_timeout: %s", p[0])
		}
	})
	// 7. EXECUTE of a prepared set_config before the DDL in one Query.
	t.Run("EXECUTE set_config; DDL", func(t *testing.T) {
		_, p := rtCompare(t, "", []string{"PREPARE p AS SELECT set_config('lock_timeout', '0', false)", "SET lock_timeout = '1s'", "@hold rt_t", "EXECUTE p; " + alter})
		if !strings.Contains(p[2], "55P03") && !strings.Contains(p[2], "42501") {
			t.Errorf("DDL escaped: %s", p[2])
		}
	})
	// 8. A function created through pgguard whose body runs DDL: the call
	// runs with the session's own lock_timeout.
	t.Run("function body DDL created through pgguard", func(t *testing.T) {
		_, p := rtCompare(t, "", []string{"CREATE OR REPLACE FUNCTION rt_g() RETURNS void LANGUAGE plpgsql AS $$ BEGIN ALTER TABLE rt_t ALTER COLUMN v SET DEFAULT 'y'; END $$", "@hold rt_t", "SELECT rt_g()"})
		timedOut(t, p, 1)
	})
}

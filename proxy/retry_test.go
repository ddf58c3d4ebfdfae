package proxy

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/pgguard/pgguard/internal/testkit/pgtest"
)

// A DDL statement sent with the extended protocol, alone in its batch and
// in autocommit, is retried after a lock_timeout failure like a simple
// Query: the client gets exactly the messages PostgreSQL gives the same
// batch when the lock is free (or, when it never is, when it times out
// once), whether the statement is named or not. The named statement exists
// once afterwards, as it would directly.
func TestExtendedProtocolRetry(t *testing.T) {
	rules := "lock_timeout: 300ms\nlock_timeout_retries: {attempts: 3, initial_backoff: 100ms, max_backoff: 200ms}\n"
	_, addr, obs := guardProxy(t, rules, nil)
	ctx := context.Background()
	holder := connect(t, pg.DSN(pgtest.SuperUser, "guard"))
	defer pgExec("guard", "ALTER TABLE small DROP COLUMN IF EXISTS wire_ext")

	batch := func(name, sql string) []pgproto3.FrontendMessage {
		return []pgproto3.FrontendMessage{
			&pgproto3.Parse{Name: name, Query: sql},
			&pgproto3.Bind{PreparedStatement: name},
			&pgproto3.Describe{ObjectType: 'P'},
			&pgproto3.Execute{},
			&pgproto3.Sync{},
		}
	}
	const add, drop = "ALTER TABLE small ADD COLUMN wire_ext int", "ALTER TABLE small DROP COLUMN wire_ext"
	// What PostgreSQL answers, directly: the lock free, and held by a
	// session that gives up after lock_timeout.
	direct := rawConnect(t, pg.Addr(), "guard")
	direct.send(batch("d1", add)...)
	wantOK := direct.until(1)
	direct.send(batch("d2", drop)...)
	direct.until(1)
	mustExec(t, holder, "BEGIN")
	mustExec(t, holder, "LOCK TABLE small IN ACCESS SHARE MODE")
	direct.send(&pgproto3.Query{String: "SET lock_timeout = '100ms'"})
	direct.until(1)
	direct.send(batch("d3", add)...)
	wantFail := direct.until(1)
	mustExec(t, holder, "ROLLBACK")
	if !has(wantOK, "CommandComplete ALTER TABLE") || !has(wantFail, "ErrorResponse ERROR 55P03") {
		t.Fatalf("directly: %q, then %q", wantOK, wantFail)
	}

	for _, name := range []string{"", "ddl_named"} {
		t.Run("statement "+name, func(t *testing.T) {
			c := rawConnect(t, addr, "guard")
			// Held for good: three tries, one failure reaches the client.
			retries := obs.retries.Load()
			mustExec(t, holder, "BEGIN")
			mustExec(t, holder, "LOCK TABLE small IN ACCESS SHARE MODE")
			start := time.Now()
			c.send(batch(name, add)...)
			got := c.until(1)
			el := time.Since(start)
			mustExec(t, holder, "ROLLBACK")
			if !slices.Equal(got, wantFail) {
				t.Fatalf("lock held: got %q, want %q", got, wantFail)
			}
			if n := obs.retries.Load() - retries; n != 2 || el < 900*time.Millisecond {
				t.Fatalf("lock held: %d retries in %v, want 2 after 3 tries of 300ms", n, el)
			}
			if name != "" {
				// The statement exists once: a second Parse of the name
				// fails as it would directly.
				c.send(&pgproto3.Parse{Name: name, Query: "SELECT 1"}, &pgproto3.Sync{})
				if got := c.until(1); !has(got, "ErrorResponse ERROR 42P05") {
					t.Fatalf("a second Parse of %s: %q", name, got)
				}
				c.send(&pgproto3.Close{ObjectType: 'S', Name: name}, &pgproto3.Sync{})
				c.until(1)
			}

			// Released during the retries: the client sees only success.
			retries = obs.retries.Load()
			mustExec(t, holder, "BEGIN")
			mustExec(t, holder, "LOCK TABLE small IN ACCESS SHARE MODE")
			released := make(chan struct{})
			go func() {
				defer close(released)
				time.Sleep(450 * time.Millisecond)
				holder.Exec(ctx, "ROLLBACK")
			}()
			c.send(batch(name, add)...)
			got = c.until(1)
			<-released
			if !slices.Equal(got, wantOK) {
				t.Fatalf("lock released: got %q, want %q", got, wantOK)
			}
			if obs.retries.Load() == retries {
				t.Fatal("the statement succeeded without a retry: the lock was not held")
			}
			// The session goes on in step: the next batch gets its own answer.
			c.send(&pgproto3.Parse{Query: "SELECT 7"}, &pgproto3.Bind{}, &pgproto3.Execute{}, &pgproto3.Sync{})
			if got := c.until(1); !has(got, "DataRow 7") {
				t.Fatalf("after the retry: %q", got)
			}
			if err := pgExec("guard", drop); err != nil {
				t.Fatal(err)
			}
		})
	}

	// Not retried: in a transaction block, and with a second Execute in
	// the batch (the first may have changed something).
	c := rawConnect(t, addr, "guard")
	mustExec(t, holder, "BEGIN")
	mustExec(t, holder, "LOCK TABLE small IN ACCESS SHARE MODE")
	defer holder.Exec(ctx, "ROLLBACK")
	for _, tc := range []struct {
		msgs  []pgproto3.FrontendMessage
		syncs int
	}{
		{append([]pgproto3.FrontendMessage{&pgproto3.Query{String: "BEGIN"}}, batch("", add)...), 2},
		{append(batch("", add)[:4], &pgproto3.Parse{Query: "SELECT 1"}, &pgproto3.Bind{}, &pgproto3.Execute{}, &pgproto3.Sync{}), 1},
	} {
		retries := obs.retries.Load()
		start := time.Now()
		c.send(tc.msgs...)
		got := c.until(tc.syncs)
		if !has(got, "ErrorResponse ERROR 55P03") || obs.retries.Load() != retries || time.Since(start) > 900*time.Millisecond {
			t.Fatalf("got %q after %v with %d retries, want one 55P03 try", got, time.Since(start), obs.retries.Load()-retries)
		}
		c.send(&pgproto3.Query{String: "ROLLBACK"})
		c.until(1)
	}
}

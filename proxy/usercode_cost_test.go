package proxy

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgguard/pgguard/internal/testkit/pgtest"
)

// internalCounter is a TCP relay between pgguard and PostgreSQL that
// counts pgguard's own queries (round trips): each is bound as statement
// and portal "pgguard_internal" (enforce.internalMessages).
type internalCounter struct {
	addr string
	n    atomic.Int64
}

func startInternalCounter(t *testing.T, upstream string) *internalCounter {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c := &internalCounter{addr: ln.Addr().String()}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			client, err := ln.Accept()
			if err != nil {
				return
			}
			server, err := net.Dial("tcp", upstream)
			if err != nil {
				client.Close()
				continue
			}
			wg.Add(2)
			go func() { defer wg.Done(); io.Copy(client, server); client.Close() }()
			go func() { defer wg.Done(); c.copyCounting(server, client); server.Close() }()
		}
	}()
	return c
}

var internalBind = []byte("pgguard_internal\x00pgguard_internal\x00")

func (c *internalCounter) copyCounting(dst io.Writer, src io.Reader) {
	buf := make([]byte, 64<<10)
	var tail []byte
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
			scan := append(tail, buf[:n]...)
			c.n.Add(int64(bytes.Count(scan, internalBind)))
			// Keep what may begin a match that the next read completes.
			keep := min(len(internalBind)-1, len(scan))
			tail = append([]byte(nil), scan[len(scan)-keep:]...)
		}
		if err != nil {
			return
		}
	}
}

// TestUserCodeRoundTrips measures pgguard's own queries (round trips to
// the server) for application traffic: none for statements that call no
// user function, in a transaction block or not; for calls of one, a
// question for its body once per session (the session's memo keeps it),
// and in a transaction block one pg_locks question before each UPDATE or
// DELETE that follows the call.
func TestUserCodeRoundTrips(t *testing.T) {
	counter := startInternalCounter(t, pg.Addr())
	_, addr, _ := guardProxy(t, "", func(c *Config) { c.Targets[0].Upstream = counter.addr })
	ctx := context.Background()
	if err := pgExec("guard", "CREATE OR REPLACE FUNCTION rt20b_uc_plain(int) RETURNS int LANGUAGE plpgsql AS $$ BEGIN RETURN $1; END $$"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pgExec("guard", "DROP FUNCTION IF EXISTS rt20b_uc_plain(int)") })
	const rounds = 20
	for _, c := range []struct {
		name  string
		steps []string
		max   int64 // pgguard's queries allowed for all rounds
	}{
		{"no call, autocommit", []string{"SELECT note FROM big WHERE id = 1", "UPDATE big SET note = note WHERE id = 1", "SELECT count(*), coalesce(max(id), 0) FROM big WHERE id IN (1, 2)"}, 0},
		{"no call, transaction", []string{"BEGIN", "SELECT note FROM big WHERE id = 1 FOR UPDATE", "UPDATE big SET note = note WHERE id = 1", "COMMIT"}, 0},
		{"call, autocommit", []string{"SELECT rt20b_uc_plain(1)", "UPDATE big SET note = note WHERE id = 1"}, 2},
		{"call, transaction", []string{"BEGIN", "SELECT rt20b_uc_plain(1)", "UPDATE big SET note = note WHERE id = 1", "COMMIT"}, rounds},
	} {
		t.Run(c.name, func(t *testing.T) {
			conn, _ := guardConn(t, addr, pgtest.SuperUser, "")
			before := counter.n.Load()
			for i := 0; i < rounds; i++ {
				for _, s := range c.steps {
					if _, err := conn.Exec(ctx, s); err != nil {
						t.Fatalf("%s: %v", s, err)
					}
				}
			}
			got := counter.n.Load() - before
			t.Logf("%s: %d rounds of %q: %d queries of pgguard's own", c.name, rounds, c.steps, got)
			if got > c.max {
				t.Errorf("%d queries of pgguard's own, want at most %d", got, c.max)
			}
		})
	}
}

// TestCalledDDLGetsLockTimeout: an application's session (no DDL seen, no
// tool) calls a function whose body runs ALTER TABLE, created without
// pgguard, while another session holds a read of the table: the call gets
// pgguard's lock_timeout as the ALTER would (55P03), in the simple and the
// extended protocol, where before it waited for as long as the reader.
func TestCalledDDLGetsLockTimeout(t *testing.T) {
	_, addr, _ := guardProxy(t, rtRules, nil)
	ctx := context.Background()
	if err := pgExec("guard", "DROP TABLE IF EXISTS rt20b_cd", "CREATE TABLE rt20b_cd (id int)",
		"CREATE OR REPLACE FUNCTION rt20b_cd_alter(int) RETURNS int LANGUAGE plpgsql AS $$ BEGIN ALTER TABLE rt20b_cd ALTER COLUMN id SET DEFAULT 1; RETURN $1; END $$",
		"CREATE OR REPLACE PROCEDURE rt20b_cd_proc() LANGUAGE sql AS $$ ALTER TABLE rt20b_cd ALTER COLUMN id SET DEFAULT 2 $$"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		pgExec("guard", "DROP TABLE IF EXISTS rt20b_cd", "DROP FUNCTION IF EXISTS rt20b_cd_alter(int)", "DROP PROCEDURE IF EXISTS rt20b_cd_proc()")
	})
	// (Extended: Parse, Bind, Execute and Sync in one batch; a statement
	// prepared in one batch and run by a Bind in a later one runs with
	// the session's own lock_timeout, DDL or call alike: README.)
	for _, c := range []struct {
		sql      string
		extended bool
	}{
		{"SELECT rt20b_cd_alter(1)", false},
		{"SELECT rt20b_cd_alter($1)", true},
		{"CALL rt20b_cd_proc()", false},
	} {
		t.Run(c.sql, func(t *testing.T) {
			reader := connect(t, pg.DSN(pgtest.SuperUser, "guard"))
			mustExec(t, reader, "BEGIN")
			mustExec(t, reader, "SELECT * FROM rt20b_cd")
			defer reader.Exec(ctx, "ROLLBACK")
			conn, _ := guardConn(t, addr, pgtest.SuperUser, "")
			tctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			start := time.Now()
			var err error
			if c.extended {
				_, err = conn.PgConn().ExecParams(tctx, c.sql, [][]byte{[]byte("1")}, nil, nil, nil).Close()
			} else {
				_, err = conn.Exec(tctx, c.sql)
			}
			var pe *pgconn.PgError
			if !errors.As(err, &pe) || pe.Code != "55P03" {
				t.Fatalf("%s behind an open reader: %v after %v; want pgguard's lock_timeout (55P03)", c.sql, err, time.Since(start).Round(time.Millisecond))
			}
		})
	}
}

//go:build linux

package proxy

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/pgguard/pgguard/internal/testkit/pgtest"
)

// inLoop reports, for the one session srv has, whether the event loop
// relays it.
func inLoop(t *testing.T, srv *Server) bool {
	t.Helper()
	srv.mu.Lock()
	defer srv.mu.Unlock()
	if len(srv.sessions) != 1 {
		t.Fatalf("%d sessions, want 1", len(srv.sessions))
	}
	for s := range srv.sessions {
		s.loopMu.Lock()
		defer s.loopMu.Unlock()
		return s.loop != nil
	}
	return false
}

// Plain traffic of every shape stays in the event loop with its answers
// intact: simple and extended queries, a pipeline, a row larger than the
// loop's buffer, a reported setting. The first statement pgguard must
// judge hands the session to the goroutine relay, which goes on in step.
func TestEventLoopRelaysPlainTraffic(t *testing.T) {
	srv, addr, _ := guardProxy(t, "", nil)
	ctx := context.Background()
	conn, _ := guardConn(t, addr, pgtest.SuperUser, "")
	defer conn.Close(ctx)
	waitFor(t, "the session to enter the event loop", func() bool { return inLoop(t, srv) })

	for i := range 50 {
		var n int
		if err := conn.QueryRow(ctx, "SELECT $1::int + 1", i).Scan(&n); err != nil || n != i+1 {
			t.Fatalf("extended: %d, %v", n, err)
		}
		var s string
		if err := conn.QueryRow(ctx, "SELECT 'x' || 7", pgx.QueryExecModeSimpleProtocol).Scan(&s); err != nil || s != "x7" {
			t.Fatalf("simple: %q, %v", s, err)
		}
	}
	b := &pgx.Batch{}
	for i := range 20 {
		b.Queue("SELECT $1::int", i)
	}
	res := conn.SendBatch(ctx, b)
	for i := range 20 {
		var n int
		if err := res.QueryRow().Scan(&n); err != nil || n != i {
			t.Fatalf("batch %d: %d, %v", i, n, err)
		}
	}
	if err := res.Close(); err != nil {
		t.Fatal(err)
	}
	var big string
	if err := conn.QueryRow(ctx, "SELECT repeat('ab', 300000)").Scan(&big); err != nil || len(big) != 600000 || strings.Trim(big, "ab") != "" {
		t.Fatalf("large row: %d bytes, %v", len(big), err)
	}
	mustExec(t, conn, "SET application_name = 'looped'")
	if got := conn.PgConn().ParameterStatus("application_name"); got != "looped" {
		t.Fatalf("application_name reported %q", got)
	}
	if !inLoop(t, srv) {
		t.Fatal("plain traffic left the event loop")
	}

	// A statement to judge: handed back, answered, and the session goes on.
	defer pgExec("guard", "DROP TABLE IF EXISTS loop_t")
	mustExec(t, conn, "CREATE TABLE IF NOT EXISTS loop_t (a int)")
	if inLoop(t, srv) {
		t.Fatal("DDL was relayed by the event loop")
	}
	var n int
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM loop_t").Scan(&n); err != nil || n != 0 {
		t.Fatalf("after the hand-off: %d, %v", n, err)
	}
}

// A session that the event loop relays ends at once on shutdown when idle,
// and its client is told why, as in the goroutine relay.
func TestEventLoopShutdown(t *testing.T) {
	srv, addr, _ := guardProxy(t, "", nil)
	ctx := context.Background()
	conn, _ := guardConn(t, addr, pgtest.SuperUser, "")
	defer conn.Close(ctx)
	waitFor(t, "the session to enter the event loop", func() bool { return inLoop(t, srv) })
	sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	start := time.Now()
	if err := srv.Shutdown(sctx); err != nil {
		t.Fatalf("shutdown: %v after %v", err, time.Since(start))
	}
	if _, err := conn.Exec(ctx, "SELECT 1"); err == nil {
		t.Fatal("a query after shutdown succeeded")
	}
}

// A client that reads slowly fills its socket: the loop hands the session
// over with what the socket did not take, and every byte arrives in order.
func TestEventLoopSlowReader(t *testing.T) {
	srv, addr, _ := guardProxy(t, "", nil)
	c := rawConnect(t, addr, "guard")
	waitFor(t, "the session to enter the event loop", func() bool { return inLoop(t, srv) })
	c.send(&pgproto3.Query{String: "SELECT i, repeat(chr(65 + i), 1000000) FROM generate_series(0, 19) i"})
	time.Sleep(300 * time.Millisecond) // the answer fills the socket buffers meanwhile
	got := c.until(1)
	if len(got) != 23 || got[0] != "RowDescription" || got[21] != "CommandComplete SELECT 20" || got[22] != "ReadyForQuery I" {
		t.Fatalf("got %d messages: %q ... %q", len(got), got[:min(3, len(got))], got[max(0, len(got)-2):])
	}
	for i, m := range got[1:21] {
		if m != fmt.Sprintf("DataRow %d,1000000 bytes", i) {
			t.Fatalf("row %d: %q", i, m)
		}
	}
	if inLoop(t, srv) {
		t.Fatal("the loop kept a session whose client did not take a whole write")
	}
	c.send(&pgproto3.Query{String: "SELECT 5"})
	if got := c.until(1); !has(got, "DataRow 5") {
		t.Fatalf("after: %q", got)
	}
}

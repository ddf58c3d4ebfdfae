package proxy

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/pgguard/pgguard/internal/testkit/pgtest"
)

func pgCode(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code
	}
	return ""
}

func TestUpstreamDown(t *testing.T) {
	port, _ := pgtest.FreePort()
	down := fmt.Sprintf("127.0.0.1:%d", port)
	_, addr := startProxy(t, func(c *Config) {
		c.Targets[0].Upstream = down
		c.ConnectTimeout = time.Second
	})
	start := time.Now()
	_, err := pgx.Connect(context.Background(), dsn(addr, pgtest.SuperUser, "connect_timeout=10"))
	if pgCode(err) != "08001" || !strings.Contains(err.Error(), down) {
		t.Fatalf("err = %v, want SQLSTATE 08001 naming %s", err, down)
	}
	if el := time.Since(start); el > 3*time.Second {
		t.Fatalf("took %v", el)
	}
}

// A server that accepts TCP but never answers must not hang the client past
// the connect timeout.
func TestUpstreamStalled(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	_, addr := startProxy(t, func(c *Config) {
		c.Targets[0].Upstream = l.Addr().String()
		c.ConnectTimeout = 500 * time.Millisecond
	})
	start := time.Now()
	_, err = pgx.Connect(context.Background(), dsn(addr, pgtest.SuperUser, "connect_timeout=10"))
	if pgCode(err) != "08001" {
		t.Fatalf("err = %v, want SQLSTATE 08001", err)
	}
	if el := time.Since(start); el > 3*time.Second {
		t.Fatalf("took %v", el)
	}
}

func TestMaxConnections(t *testing.T) {
	srv, addr := startProxy(t, func(c *Config) { c.MaxConnections = 2 })
	connect(t, dsn(addr, pgtest.SuperUser, ""))
	c2 := connect(t, dsn(addr, pgtest.SuperUser, ""))
	if !srv.Full() {
		t.Fatal("Full() = false with 2 of 2 connections")
	}
	_, err := pgx.Connect(context.Background(), dsn(addr, pgtest.SuperUser, ""))
	if pgCode(err) != "53300" {
		t.Fatalf("third connection: err = %v, want 53300", err)
	}
	c2.Close(context.Background())
	deadline := time.Now().Add(5 * time.Second)
	for srv.Full() && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	connect(t, dsn(addr, pgtest.SuperUser, ""))
}

func TestUpstreamRestart(t *testing.T) {
	own := pgtest.Must(t, pgtest.Options{})
	_, addr := startProxy(t, func(c *Config) { c.Targets[0].Upstream = own.Addr() })
	ctx := context.Background()
	waiting := connect(t, dsn(addr, pgtest.SuperUser, ""))
	errc := make(chan error, 1)
	go func() {
		_, err := waiting.Exec(ctx, "SELECT pg_sleep(20)")
		errc <- err
	}()
	time.Sleep(300 * time.Millisecond)
	if err := own.Stop(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-errc:
		if err == nil {
			t.Fatal("statement survived a server shutdown")
		}
		if c := pgCode(err); c != "57P01" && c != "08006" {
			t.Logf("waiting client got %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("client still waiting 10s after the server stopped")
	}
	_, err := pgx.Connect(ctx, dsn(addr, pgtest.SuperUser, ""))
	if pgCode(err) != "08001" {
		t.Fatalf("connect while down: %v, want 08001", err)
	}
	if err := own.Start(); err != nil {
		t.Fatal(err)
	}
	c := connect(t, dsn(addr, pgtest.SuperUser, ""))
	if _, err := c.Exec(ctx, "SELECT 1"); err != nil {
		t.Fatal(err)
	}
}

func TestClientDisconnectCancelsStatement(t *testing.T) {
	_, addr := startProxy(t, nil)
	conn, err := pgconn.Connect(context.Background(), dsn(addr, pgtest.SuperUser, "application_name=vanishing"))
	if err != nil {
		t.Fatal(err)
	}
	// Send the query and drop the socket without reading the answer.
	conn.Frontend().Send(&pgproto3.Query{String: "SELECT pg_sleep(60) /* vanishing */"})
	conn.Frontend().Flush()
	time.Sleep(200 * time.Millisecond)
	conn.Conn().Close()
	waitGone(t, "vanishing")
}

func TestShutdownDrains(t *testing.T) {
	srv, addr := startProxy(t, nil)
	ctx := context.Background()
	idle := connect(t, dsn(addr, pgtest.SuperUser, ""))
	busy := connect(t, dsn(addr, pgtest.SuperUser, ""))
	inTx := connect(t, dsn(addr, pgtest.SuperUser, ""))
	tx, err := inTx.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	busyErr := make(chan error, 1)
	go func() {
		_, err := busy.Exec(ctx, "SELECT pg_sleep(1.5)")
		busyErr <- err
	}()
	time.Sleep(200 * time.Millisecond)
	shutErr := make(chan error, 1)
	sctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	go func() { shutErr <- srv.Shutdown(sctx) }()
	time.Sleep(300 * time.Millisecond)

	if _, err := pgx.Connect(ctx, dsn(addr, pgtest.SuperUser, "connect_timeout=2")); err == nil {
		t.Fatal("a new connection was accepted while draining")
	}
	if _, err := idle.Exec(ctx, "SELECT 1"); err == nil {
		t.Fatal("idle session was not ended by the drain")
	}
	if err := <-busyErr; err != nil {
		t.Fatalf("the running statement was cut by the drain: %v", err)
	}
	// The open transaction may finish.
	if _, err := tx.Exec(ctx, "SELECT 1"); err != nil {
		t.Fatalf("transaction cut by the drain: %v", err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatalf("commit during drain: %v", err)
	}
	select {
	case err := <-shutErr:
		if err != nil {
			t.Fatalf("Shutdown: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Shutdown did not return after every session ended")
	}
}

func TestShutdownDeadlineClosesRunning(t *testing.T) {
	srv, addr := startProxy(t, nil)
	ctx := context.Background()
	busy := connect(t, dsn(addr, pgtest.SuperUser, "application_name=cut_by_shutdown"))
	errc := make(chan error, 1)
	go func() {
		_, err := busy.Exec(ctx, "SELECT pg_sleep(30)")
		errc <- err
	}()
	time.Sleep(200 * time.Millisecond)
	sctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancel()
	if err := srv.Shutdown(sctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown = %v, want deadline exceeded", err)
	}
	select {
	case err := <-errc:
		if err == nil {
			t.Fatal("statement finished")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("client not released after the shutdown deadline")
	}
	waitGone(t, "cut_by_shutdown")
}

// waitGone waits until no backend of application_name runs a statement.
func waitGone(t *testing.T, app string) {
	t.Helper()
	probe := connect(t, pg.DSN(pgtest.SuperUser, "postgres"))
	deadline := time.Now().Add(5 * time.Second)
	for {
		var n int
		if err := probe.QueryRow(context.Background(), "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1 AND state = 'active'", app).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("a backend of %s still runs its statement", app)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

package proxy

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/pgguard/pgguard/internal/testkit/pgtest"
)

// pg is the real PostgreSQL every integration test in this package talks to.
var pg *pgtest.Server

func TestMain(m *testing.M) {
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	if _, err := pgtest.BinDir(); err != nil {
		if os.Getenv("CI") != "" {
			fmt.Fprintln(os.Stderr, "CI needs a real PostgreSQL:", err)
			return 1
		}
		fmt.Fprintln(os.Stderr, "skipping proxy integration tests:", err)
		return m.Run()
	}
	var err error
	pg, err = pgtest.Start(pgtest.Options{TLS: true})
	if err != nil {
		fmt.Fprintln(os.Stderr, "starting PostgreSQL:", err)
		return 1
	}
	defer pg.Close()
	return m.Run()
}

// needPG skips a test when no PostgreSQL could be found outside CI.
func needPG(t testing.TB) {
	t.Helper()
	if pg == nil {
		t.Skip("skipping: needs a real PostgreSQL (install Debian's postgresql package)")
	}
}

// testLogger writes to the test log when -v, else nowhere.
func testLogger(t testing.TB) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// startProxy starts a proxy in front of pg (or cfg's own targets after mut)
// and returns it with the address of its first target.
func startProxy(t testing.TB, mut func(*Config)) (*Server, string) {
	t.Helper()
	needPG(t)
	cfg := Config{
		Targets: []Target{{Name: "test", Listen: "127.0.0.1:0", Upstream: pg.Addr()}},
		Logger:  testLogger(t),
	}
	if mut != nil {
		mut(&cfg)
	}
	srv, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Listen(); err != nil {
		t.Fatal(err)
	}
	go srv.Serve()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	})
	return srv, srv.Addrs()[0].String()
}

// dsn is a URL for user through the proxy at addr.
func dsn(addr, user string, extra string) string {
	u := fmt.Sprintf("postgres://%s:%s@%s/postgres?sslmode=disable", user, pgtest.Password, addr)
	if extra != "" {
		u += "&" + extra
	}
	return u
}

package wiretest

import (
	"context"
	"fmt"
	_ "github.com/pgguard/pgguard/policy/rules" // the rules register themselves with the engine
	"io"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/pgguard/pgguard/internal/testkit/pgtest"
	"github.com/pgguard/pgguard/policy"
	"github.com/pgguard/pgguard/proxy"
)

// env is what every test in the package shares: one throwaway PostgreSQL
// with the template database, and one pgguard in front of it with the
// shipped policy. Nil when no PostgreSQL could be found outside CI.
var env *testEnv

type testEnv struct {
	pg    *pgtest.Server
	proxy string // address of pgguard
}

func TestMain(m *testing.M) {
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	if _, err := pgtest.BinDir(); err != nil {
		if os.Getenv("CI") != "" {
			fmt.Fprintln(os.Stderr, "CI needs a real PostgreSQL for the wire diff:", err)
			return 1
		}
		fmt.Fprintln(os.Stderr, "skipping the wire diff tests: no PostgreSQL:", err)
		return m.Run()
	}
	pg, err := pgtest.Start(pgtest.Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, "starting PostgreSQL:", err)
		return 1
	}
	defer pg.Close()
	if err := createTemplate(pg); err != nil {
		fmt.Fprintln(os.Stderr, "creating the template database:", err)
		return 1
	}
	srv, err := startProxy(pg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "starting pgguard:", err)
		return 1
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	}()
	env = &testEnv{pg: pg, proxy: srv.Addrs()[0].String()}
	return m.Run()
}

// needEnv skips a test when there is no PostgreSQL (TestMain already failed
// the run under CI).
func needEnv(t *testing.T) *testEnv {
	t.Helper()
	if env == nil {
		t.Skip("skipping: needs a real PostgreSQL (install Debian's postgresql package or set PGGUARD_PG_BINDIR)")
	}
	return env
}

// wireLockTimeout is pgguard's lock_timeout for DDL in these tests.
const wireLockTimeout = 500 * time.Millisecond

// startProxy runs pgguard in-process with the shipped rules.yaml, except
// that large-dml warns (as for a batch-jobs profile): the generated
// sessions use its warning, whose NOTICE travels beside the rows of an
// UPDATE ... RETURNING, as the statement that pgguard lets run with a
// message of its own.
func startProxy(pg *pgtest.Server) (*proxy.Server, error) {
	cfg, err := policy.DefaultConfig()
	if err != nil {
		return nil, err
	}
	cfg.Rules["large-dml"] = policy.LevelWarn
	// A lock_timeout shorter than the default 3s, so that a DDL the
	// second session keeps waiting (ddlRetried) fails on it and is
	// retried within a session's time, while the LOCK TABLE that waits
	// for the second session's writer (lockThenRead, 120 ms at most)
	// does not.
	cfg.LockTimeout = policy.Duration(wireLockTimeout)
	eng, err := policy.NewEngine(cfg)
	if err != nil {
		return nil, err
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	if os.Getenv("PGGUARD_WIRE_LOG") != "" {
		logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	srv, err := proxy.New(proxy.Config{
		Targets: []proxy.Target{{Name: "diff", Listen: "127.0.0.1:0", Upstream: pg.Addr()}},
		Policy:  proxy.NewPolicy(eng),
		Logger:  logger,
		// PGGUARD_WIRE_RELAY=goroutines plays the sessions through the
		// goroutine relay alone.
		Relay: proxy.RelayMode(os.Getenv("PGGUARD_WIRE_RELAY")),
	})
	if err != nil {
		return nil, err
	}
	if err := srv.Listen(); err != nil {
		return nil, err
	}
	go srv.Serve()
	return srv, nil
}

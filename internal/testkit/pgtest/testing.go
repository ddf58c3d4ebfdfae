package pgtest

import (
	"os"
	"testing"
)

// Must starts a cluster for a test and stops it when the test ends. Without
// PostgreSQL binaries it skips with the reason, except under CI (CI=true),
// where a missing PostgreSQL is a failure: CI must not skip these tests.
func Must(t testing.TB, opts Options) *Server {
	t.Helper()
	if _, err := BinDir(); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("CI needs a real PostgreSQL: %v", err)
		}
		t.Skipf("skipping: needs a real PostgreSQL: %v", err)
	}
	s, err := Start(opts)
	if err != nil {
		t.Fatalf("starting PostgreSQL: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

package wiretest

import (
	"fmt"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Defaults of the generated run, sized for make test on two cores (about
// 18 sessions a second under -race with the four workers); set
// PGGUARD_WIRE_SESSIONS and PGGUARD_WIRE_SEED for longer or other runs.
const (
	defaultSeed     = 20261130
	defaultSessions = 2000
	defaultWorkers  = 4
)

// maxReported stops the run after this many failing sessions: with a hang
// each costs readTimeout, and more of the same rarely help. Raise it with
// PGGUARD_WIRE_MAX_FAILURES to survey every kind of divergence.
var maxReported = int64(envInt("PGGUARD_WIRE_MAX_FAILURES", 3))

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// TestWireDiff plays generated sessions straight to PostgreSQL and through
// pgguard and compares the answers. Session i of seed S is drawn from
// PCG(S, i); PGGUARD_WIRE_ONLY=i replays just that one.
func TestWireDiff(t *testing.T) {
	e := needEnv(t)
	seed := uint64(envInt("PGGUARD_WIRE_SEED", defaultSeed))
	n := envInt("PGGUARD_WIRE_SESSIONS", defaultSessions)
	first := 0
	if only, err := strconv.Atoi(os.Getenv("PGGUARD_WIRE_ONLY")); err == nil {
		first, n = only, 1
	}
	workers := min(envInt("PGGUARD_WIRE_WORKERS", defaultWorkers), n)

	start := time.Now()
	var next, played, failed atomic.Int64
	next.Store(int64(first))
	var wg sync.WaitGroup
	for range workers {
		w, err := newWorker(e)
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer w.close()
			for failed.Load() < maxReported {
				i := int(next.Add(1) - 1)
				if i >= first+n {
					return
				}
				s := newGen(seed, i).session(fmt.Sprintf("seed %d session %d", seed, i))
				out := w.play(s)
				played.Add(1)
				if out.ok() {
					continue
				}
				if failed.Add(1) > maxReported {
					return
				}
				report(t, s, out, fmt.Sprintf("PGGUARD_WIRE_SEED=%d PGGUARD_WIRE_ONLY=%d go test -run TestWireDiff ./internal/suites/wiretest/", seed, i))
				if err := w.fresh(); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	t.Logf("played %d sessions (seed %d, %d workers) in %v", played.Load(), seed, workers, time.Since(start).Round(time.Millisecond))
	if failed.Load() >= maxReported {
		t.Logf("stopped after %d failing sessions", maxReported)
	}
}

// report fails t with everything needed to reproduce a failing session.
func report(t *testing.T, s *session, out outcome, rerun string) {
	t.Helper()
	if out.harness != "" {
		t.Errorf("%s: harness error (the test's model is wrong, not pgguard): %s\nsession:\n%s", s.name, out.harness, s)
		return
	}
	replay := ""
	if rerun != "" {
		replay = "replay: " + rerun + "\n"
	}
	t.Errorf("%s: pgguard diverges from PostgreSQL\n%ssession:\n%s%s", s.name, replay, s, out.divergence)
}

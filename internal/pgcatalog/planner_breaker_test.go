package pgcatalog

import (
	"context"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/pgguard/pgguard/internal/testkit/pgtest"
	"github.com/pgguard/pgguard/policy"
)

// blackhole accepts TCP connections and never answers: a source that is
// down behind a load balancer, where every connection waits the connect
// timeout.
func blackhole(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var held []net.Conn
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			held = append(held, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range held {
			c.Close()
		}
		mu.Unlock()
	})
	return ln.Addr().String()
}

// TestPlannerAnswersCachedAndBreaker: production's planner answers are
// kept for a refresh, and after a connection to production failed its
// planner is not asked again for Breaker: uat's statements on an empty
// table are then estimated at once as all of production's rows (never
// small), instead of each waiting the connect timeout.
func TestPlannerAnswersCachedAndBreaker(t *testing.T) {
	pg, prod, uat := redteamServer(t)
	for _, q := range []*ConnQuerier{prod, uat} {
		mustExec(t, q, "CREATE TABLE accounts (id int PRIMARY KEY, status text)")
	}
	mustExec(t, prod, "INSERT INTO accounts SELECT g, 'open' FROM generate_series(1, 1500) g")
	for _, q := range []*ConnQuerier{prod, uat} {
		analyze(t, q)
	}
	now := time.Now()
	live := NewLiveSizes("production", ConnSpec{Upstream: pg.Addr(), User: pgtest.SCRAMUser, Password: pgtest.Password, Database: "production", ConnectTimeout: time.Second}, time.Minute, nil)
	live.now = func() time.Time { return now }
	ctx := context.Background()
	if err := live.Read(ctx); err != nil {
		t.Fatal(err)
	}
	b := &Borrowed{Catalog: &Catalog{Q: uat}, Src: live}
	ask := func(bound string, wantSelective bool, slow bool) {
		t.Helper()
		sql := "UPDATE accounts SET status = 'x' WHERE id <= " + bound
		start := time.Now()
		rows, ok := b.EstimateRows(ctx, sql)
		took := time.Since(start)
		t.Logf("id <= %s: %d rows in %v", bound, rows, took.Round(time.Millisecond))
		switch {
		case !ok:
			t.Errorf("%s: no estimate", sql)
		case wantSelective && rows > 200:
			t.Errorf("%s: %d rows, want production's planner's (a few dozen)", sql, rows)
		case !wantSelective && rows < 1500:
			t.Errorf("%s: %d rows, want all of production's 1,500", sql, rows)
		}
		if slow && took < 800*time.Millisecond || !slow && took > 400*time.Millisecond {
			t.Errorf("%s took %v (a connection attempt expected: %v)", sql, took, slow)
		}
	}
	unreachable := func(want int64) {
		t.Helper()
		if got := live.State().PlannerUnreachable; got != want {
			t.Errorf("planner questions not asked: %d, want %d", got, want)
		}
	}
	ask("10", true, false)
	live.spec.Upstream = blackhole(t) // production stops answering
	ask("10", true, false)            // kept for the refresh
	unreachable(0)
	ask("20", false, true) // waits the connect timeout once
	unreachable(1)
	ask("30", false, false) // the breaker is open: not tried
	unreachable(2)
	now = now.Add(live.Breaker + time.Second)
	ask("10", true, false) // still kept
	ask("40", false, true) // tried again once the breaker has closed
	unreachable(3)
	now = now.Add(live.Breaker + time.Second) // past the refresh: 10 is asked again
	ask("10", false, true)
	unreachable(4)

	// A stopped server, then started again: not asked before the
	// breaker closes, then asked.
	live.spec.Upstream = pg.Addr()
	now = now.Add(live.Breaker + time.Second)
	question := "SELECT 1 FROM public.accounts WHERE id <= 50"
	table := policy.Table{Schema: "public", Name: "accounts"}
	if err := pg.Stop(); err != nil {
		t.Fatal(err)
	}
	if _, ok := live.EstimateRowsAt(ctx, question, table); ok {
		t.Fatal("a stopped server answered")
	}
	unreachable(5)
	if err := pg.Start(); err != nil {
		t.Fatal(err)
	}
	if _, ok := live.EstimateRowsAt(ctx, question, table); ok {
		t.Error("asked again before the breaker closed")
	}
	unreachable(6)
	now = now.Add(live.Breaker + time.Second)
	if rows, ok := live.EstimateRowsAt(ctx, question, table); !ok || rows > 200 {
		t.Errorf("once the breaker closed: %d (%v), want production's planner's estimate", rows, ok)
	}
	unreachable(6)
}

// TestPlannerBreakerClosedPort: a source whose port is closed trips the
// breaker too, and a failed read of the sizes does as well.
func TestPlannerBreakerClosedPort(t *testing.T) {
	port, err := pgtest.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	live := NewLiveSizes("production", ConnSpec{Upstream: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), User: "x", Database: "production", ConnectTimeout: time.Second}, time.Minute, nil)
	now := time.Now()
	live.now = func() time.Time { return now }
	if err := live.Read(context.Background()); err == nil {
		t.Fatal("read a closed port")
	}
	if !live.answers.open(now) {
		t.Error("a failed read of the sizes left the breaker closed")
	}
	if _, ok := live.EstimateRowsAt(context.Background(), "SELECT 1 FROM public.accounts", policy.Table{Schema: "public", Name: "accounts"}); ok {
		t.Error("a closed port answered")
	}
	if got := live.State().PlannerUnreachable; got != 1 {
		t.Errorf("planner questions not asked: %d, want 1", got)
	}
}

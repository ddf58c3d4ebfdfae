package main

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/pgguard/pgguard/internal/testkit/pgtest"
)

// idleResult is the memory a proxy holds for idle client connections.
type idleResult struct {
	target    string
	conns     int
	beforeKiB int64 // RSS with no client connected (after one came and went)
	afterKiB  int64 // RSS with conns idle clients connected
	openTime  time.Duration
}

// perConnKiB is the RSS growth per idle connection.
func (r idleResult) perConnKiB() float64 {
	return float64(r.afterKiB-r.beforeKiB) / float64(r.conns)
}

// idleOpeners is how many connections are being opened at a time.
const idleOpeners = 8

// measureIdle opens n connections through t with pgx, lets them sit idle,
// and reads the proxy's RSS before and after. Every connection is closed
// before it returns.
func measureIdle(ctx context.Context, t *target, n int) (idleResult, error) {
	r := idleResult{target: t.name, conns: n}
	url := fmt.Sprintf("postgres://%s@%s/%s?sslmode=disable", pgtest.SuperUser, t.addr, benchDB)
	// One connection first, so that what is set up once (the logger, the
	// dialer, the pool) is in the baseline rather than in the per-connection
	// figure.
	first, err := pgx.Connect(ctx, url)
	if err != nil {
		return r, fmt.Errorf("connecting through %s: %w", t.name, err)
	}
	first.Close(ctx)
	time.Sleep(200 * time.Millisecond)
	if r.beforeKiB, err = rssKiB(t.proc.pid()); err != nil {
		return r, err
	}

	conns := make([]*pgx.Conn, n)
	defer closeAll(conns)
	start := time.Now()
	if err := openAll(ctx, url, conns); err != nil {
		return r, fmt.Errorf("opening %d idle connections through %s: %w", n, t.name, err)
	}
	r.openTime = time.Since(start)
	// Let every session finish its start-up and settle into the relay.
	time.Sleep(time.Second)
	if r.afterKiB, err = rssKiB(t.proc.pid()); err != nil {
		return r, err
	}
	return r, nil
}

// openAll fills conns with connections to url, idleOpeners at a time, and
// returns the first error.
func openAll(ctx context.Context, url string, conns []*pgx.Conn) error {
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
		next  = make(chan int)
	)
	for range idleOpeners {
		wg.Go(func() {
			for i := range next {
				c, err := pgx.Connect(ctx, url)
				mu.Lock()
				if err != nil && first == nil {
					first = err
				}
				conns[i] = c
				mu.Unlock()
			}
		})
	}
	for i := range conns {
		mu.Lock()
		failed := first != nil
		mu.Unlock()
		if failed {
			break
		}
		next <- i
	}
	close(next)
	wg.Wait()
	return first
}

// closeAll closes every open connection in conns.
func closeAll(conns []*pgx.Conn) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for _, c := range conns {
		if c != nil {
			wg.Go(func() { c.Close(ctx) })
		}
	}
	wg.Wait()
}

package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/pgguard/pgguard/proxy"
)

// upstreamCheckInterval is how often the upstreams are dialled after the
// check at startup, for the /readiness detail.
const upstreamCheckInterval = 30 * time.Second

// upstreamChecker dials every target's upstream at startup and then every
// interval, so that a wrong --upstream is reported when pgguard starts rather
// than when the first client fails. It only dials and closes: a connection
// that sends nothing is not logged by PostgreSQL, where a half-done startup
// or TLS handshake would be. An unreachable upstream is logged and shown in
// /readiness; it never fails readiness, as the database may come up later
// and a blip should not take pgguard out of a Service.
type upstreamChecker struct {
	targets  []proxy.Target
	timeout  time.Duration
	interval time.Duration
	log      *slog.Logger

	mu    sync.Mutex
	state map[string]*upstreamState // by target name; guarded by mu
}

// upstreamState is the outcome of the last check of one upstream.
type upstreamState struct {
	checked time.Time
	err     error     // nil: reachable
	since   time.Time // when it last became reachable or unreachable
}

func newUpstreamChecker(targets []proxy.Target, timeout time.Duration, log *slog.Logger) *upstreamChecker {
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	return &upstreamChecker{targets: targets, timeout: timeout, interval: upstreamCheckInterval, log: log, state: map[string]*upstreamState{}}
}

// start checks every upstream now and then every interval until the
// returned function is called.
func (c *upstreamChecker) start() (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(c.interval)
		defer t.Stop()
		for {
			c.checkAll(ctx)
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	return func() { cancel(); <-done }
}

// checkAll dials every upstream at once and logs what changed.
func (c *upstreamChecker) checkAll(ctx context.Context) {
	var wg sync.WaitGroup
	for _, t := range c.targets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.record(t, dialUpstream(ctx, t.Upstream, c.timeout))
		}()
	}
	wg.Wait()
}

func (c *upstreamChecker) record(t proxy.Target, err error) {
	now := time.Now()
	c.mu.Lock()
	prev := c.state[t.Name]
	st := &upstreamState{checked: now, err: err, since: now}
	if prev != nil && (prev.err == nil) == (err == nil) {
		st.since = prev.since
	}
	c.state[t.Name] = st
	c.mu.Unlock()
	changed := prev == nil || (prev.err == nil) != (err == nil)
	switch {
	case err != nil && changed:
		c.log.Warn("upstream unreachable: clients of this target will get FATAL 08001 until it answers; pgguard keeps serving",
			"target", t.Name, "upstream", t.Upstream, "error", err.Error())
	case err == nil && changed:
		c.log.Info("upstream reachable", "target", t.Name, "upstream", t.Upstream)
	}
}

// report writes one line per target for /readiness.
func (c *upstreamChecker) report(w io.Writer) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := time.Now()
	for _, t := range c.targets {
		st := c.state[t.Name]
		switch {
		case st == nil:
			fmt.Fprintf(w, "upstream %s (%s): not checked yet\n", t.Name, t.Upstream)
		case st.err == nil:
			fmt.Fprintf(w, "upstream %s (%s): reachable (checked %s ago)\n", t.Name, t.Upstream, ago(now, st.checked))
		default:
			fmt.Fprintf(w, "upstream %s (%s): unreachable for %s (checked %s ago): %v\n", t.Name, t.Upstream, ago(now, st.since), ago(now, st.checked), st.err)
		}
	}
}

func ago(now, then time.Time) string { return now.Sub(then).Truncate(time.Second).String() }

// dialUpstream opens and closes a connection to upstream, which is host:port
// or a unix-socket directory optionally followed by :port, as in
// proxy.Target.Upstream.
func dialUpstream(ctx context.Context, upstream string, timeout time.Duration) error {
	network, addr, err := proxy.UpstreamNetwork(upstream)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	conn, err := (&net.Dialer{}).DialContext(ctx, network, addr)
	if err != nil {
		return err
	}
	return conn.Close()
}

package proxy

import (
	"encoding/binary"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"
)

// Several clients that send large Queries slowly, together more than the
// statement memory: each gets its answer or PostgreSQL's ERROR 53200, its
// session goes on in step, and the bytes charged never pass the limit. A
// message that could never fit is refused at once, in both protocols.
func TestStatementMemoryBound(t *testing.T) {
	const limit = 8 << 20
	srv, addr, _ := guardProxy(t, "", func(c *Config) {
		c.Limits.MaxStatementMemory = limit
		// Long enough that a slow (race-detector, loaded) machine does not
		// time every waiter out: the budget itself must let some finish.
		c.Limits.StatementMemoryWait = 15 * time.Second
	})
	mem := srv.StatementMemory()
	stop := make(chan struct{})
	var over atomic.Int64
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		for {
			select {
			case <-stop:
				return
			case <-time.After(time.Millisecond):
			}
			if n := mem.InUse(); n > limit {
				over.Store(n)
			}
		}
	}()
	defer func() {
		close(stop)
		<-sampled
	}()

	const clients, size = 8, 3 << 20
	var answered, refused atomic.Int32
	conns := make([]*rawClient, clients)
	for i := range conns {
		conns[i] = rawConnect(t, addr, "guard")
	}
	errs := make(chan error, clients)
	for i, c := range conns {
		go func() { errs <- slowQuery(c, i, size, &answered, &refused) }()
	}
	for range conns {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	t.Logf("%d answered, %d refused with 53200; peak %d bytes of %d", answered.Load(), refused.Load(), mem.Peak(), limit)
	if answered.Load() == 0 {
		t.Error("no client got its answer")
	}
	if n := over.Load(); n > 0 || mem.Peak() > limit {
		t.Errorf("statement memory reached %d (peak %d), over the limit %d", n, mem.Peak(), limit)
	}

	// Reading this one would need about 1.5 × 6MB at once.
	c := rawConnect(t, addr, "guard")
	huge := "SELECT length('" + strings.Repeat("y", 6<<20) + "')"
	c.send(&pgproto3.Query{String: huge}, &pgproto3.Query{String: "SELECT 1"})
	if got := c.until(2); !has(got, "ErrorResponse ERROR 53200") || !has(got, "DataRow 1") {
		t.Fatalf("simple: %q", got)
	}
	c.send(&pgproto3.Parse{Query: huge}, &pgproto3.Bind{}, &pgproto3.Execute{}, &pgproto3.Sync{},
		&pgproto3.Parse{Query: "SELECT 2"}, &pgproto3.Bind{}, &pgproto3.Execute{}, &pgproto3.Sync{})
	if got := c.until(2); !has(got, "ErrorResponse ERROR 53200") || !has(got, "DataRow 2") || count(got, "ReadyForQuery I") != 2 {
		t.Fatalf("extended: %q", got)
	}
}

// slowQuery sends a Query of about size bytes in slices, as a slow client
// does, and then SELECT 1; it counts whether the Query got its answer or
// ERROR 53200, and fails on anything else.
func slowQuery(c *rawClient, i, size int, answered, refused *atomic.Int32) error {
	sql := fmt.Sprintf("SELECT %d + length('%s')", i, strings.Repeat("x", size))
	msg := binary.BigEndian.AppendUint32([]byte{'Q'}, uint32(4+len(sql)+1))
	msg = append(append(msg, sql...), 0)
	for off := 0; off < len(msg); off += 256 << 10 {
		if _, err := c.conn.Write(msg[off:min(len(msg), off+256<<10)]); err != nil {
			return err
		}
		time.Sleep(20 * time.Millisecond)
	}
	got, err := c.answer()
	switch {
	case err != nil:
		return err
	case has(got, fmt.Sprintf("DataRow %d", i+size)):
		answered.Add(1)
	case has(got, "ErrorResponse ERROR 53200 out of memory"):
		refused.Add(1)
	default:
		return fmt.Errorf("client %d got %q, want the answer or ERROR 53200", i, got)
	}
	if _, err := c.conn.Write([]byte("Q\x00\x00\x00\x0dSELECT 1\x00")); err != nil {
		return err
	}
	if got, err := c.answer(); err != nil || !has(got, "DataRow 1") {
		return fmt.Errorf("client %d: the session did not go on: %q %v", i, got, err)
	}
	return nil
}

// answer reads messages up to a ReadyForQuery, as until(1) does, with an
// error instead of a failed test (for other goroutines than the test's).
func (c *rawClient) answer() ([]string, error) {
	var out []string
	for {
		m, err := c.next(20 * time.Second)
		if err != nil {
			return out, err
		}
		out = append(out, m)
		if strings.HasPrefix(m, "ReadyForQuery") {
			return out, nil
		}
	}
}

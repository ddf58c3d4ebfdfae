// Command trickle measures pgguard's resident memory while clients trickle
// large Queries into it slowly, and after they leave (the memory issue:
// 40 clients × 250MB at 1MB/s). It starts a throwaway PostgreSQL and the
// given pgguard binary in front of it, and prints VmRSS once a second.
//
//	go build -o /tmp/pgguard ./cmd/pgguard
//	go run ./bench/trickle --pgguard /tmp/pgguard --clients 20 --size 50MB --rate 1MB \
//	    --for 20s --after 70s -- --max-statement-memory 128MB
package main

import (
	"bufio"
	"encoding/binary"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pgguard/pgguard/internal/testkit/pgtest"
	"github.com/pgguard/pgguard/policy"
)

func main() {
	bin := flag.String("pgguard", "bin/pgguard", "pgguard binary")
	clients := flag.Int("clients", 20, "clients trickling at once")
	sizeS := flag.String("size", "50MB", "size of each client's Query")
	rateS := flag.String("rate", "1MB", "bytes per second each client sends")
	dur := flag.Duration("for", 20*time.Second, "how long the clients trickle before they leave")
	after := flag.Duration("after", 70*time.Second, "how long to watch after they leave")
	flag.Parse()
	size, err1 := policy.ParseByteSize(*sizeS)
	rate, err2 := policy.ParseByteSize(*rateS)
	if err1 != nil || err2 != nil {
		fail("bad --size or --rate")
	}
	pg, err := pgtest.Start(pgtest.Options{})
	if err != nil {
		fail("starting PostgreSQL: %v", err)
	}
	defer pg.Close()
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := l.Addr().String()
	l.Close()
	args := append([]string{"serve", "--listen", addr, "--upstream", pg.Addr(), "--admin", "off", "--audit-log", "off", "--log-level", "error"}, flag.Args()...)
	cmd := exec.Command(*bin, args...)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		fail("starting pgguard: %v", err)
	}
	defer cmd.Process.Kill()
	for i := 0; ; i++ {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			break
		}
		if i > 100 {
			fail("pgguard does not listen")
		}
		time.Sleep(50 * time.Millisecond)
	}
	start := rss(cmd.Process.Pid)
	fmt.Printf("pgguard %s: RSS at start %d MB; %d clients × %s at %s/s for %v\n", strings.Join(flag.Args(), " "), start>>10, *clients, *sizeS, *rateS, *dur)

	var sent, answered, oom, other atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i := range *clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			trickle(addr, i, int(size), int(rate), stop, &sent, &answered, &oom, &other)
		}()
	}
	t0 := time.Now()
	var peak int64
	sample := func(phase string) {
		r := rss(cmd.Process.Pid)
		peak = max(peak, r)
		fmt.Printf("%5.0fs %-7s RSS %5d MB  received %5d MB  answered %d  53200 %d  other %d\n",
			time.Since(t0).Seconds(), phase, r>>10, sent.Load()>>20, answered.Load(), oom.Load(), other.Load())
	}
	for time.Since(t0) < *dur {
		time.Sleep(time.Second)
		sample("trickle")
	}
	close(stop)
	wg.Wait()
	left := time.Now()
	for time.Since(left) < *after {
		time.Sleep(time.Second)
		if s := int(time.Since(left).Seconds()); s <= 5 || s%10 == 0 {
			sample("left")
		}
	}
	end := rss(cmd.Process.Pid)
	fmt.Printf("RSS: start %d MB, peak %d MB, %v after the clients left %d MB (%+d MB)\n", start>>10, peak>>10, *after, end>>10, (end-start)>>10)
}

// trickle sends Queries of size bytes at rate bytes a second until stop,
// reading the answers in the background.
func trickle(addr string, i, size, rate int, stop <-chan struct{}, sent, answered, oom, other *atomic.Int64) {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		other.Add(1)
		return
	}
	defer c.Close()
	startup := []byte{0, 0, 0, 0, 0, 3, 0, 0}
	for _, kv := range []string{"user", pgtest.SuperUser, "database", "postgres", ""} {
		startup = append(append(startup, kv...), 0)
	}
	binary.BigEndian.PutUint32(startup, uint32(len(startup)))
	c.Write(startup)
	r := bufio.NewReader(c)
	if !readyForQuery(r, nil, nil, nil) {
		other.Add(1)
		return
	}
	go readyForQuery(r, answered, oom, other) // counts answers until the connection closes
	// The Query is SELECT length('xxx…'), made as it is sent: forty clients
	// each holding a 250MB message would need 10GB here, not in pgguard.
	head := "SELECT length('"
	tail := "')\x00"
	total := len(head) + size + len(tail)
	msgLen := 1 + 4 + total
	chunk := max(rate/10, 1)
	fill := []byte(strings.Repeat("x", chunk))
	piece := func(off, n int) []byte {
		b := make([]byte, 0, n)
		for len(b) < n {
			switch at := off + len(b); {
			case at < 5:
				var h [5]byte
				h[0] = 'Q'
				binary.BigEndian.PutUint32(h[1:], uint32(4+total))
				b = append(b, h[at:min(5, at+n-len(b))]...)
			case at < 5+len(head):
				b = append(b, head[at-5:min(len(head), at-5+n-len(b))]...)
			case at < 5+len(head)+size:
				b = append(b, fill[:min(n-len(b), 5+len(head)+size-at)]...)
			default:
				k := at - 5 - len(head) - size
				b = append(b, tail[k:min(len(tail), k+n-len(b))]...)
			}
		}
		return b
	}
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		for off := 0; off < msgLen; off += chunk {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			c.SetWriteDeadline(time.Now().Add(time.Second))
			n, err := c.Write(piece(off, min(chunk, msgLen-off)))
			sent.Add(int64(n))
			if err != nil && !os.IsTimeout(err) {
				return
			}
			off -= chunk - n // a write that timed out (backpressure) is tried again
		}
	}
}

// readyForQuery reads server messages up to a ReadyForQuery (counts nil),
// or counts every answer until the connection ends.
func readyForQuery(r *bufio.Reader, answered, oom, other *atomic.Int64) bool {
	for {
		var h [5]byte
		if _, err := readFull(r, h[:]); err != nil {
			return false
		}
		body := make([]byte, binary.BigEndian.Uint32(h[1:])-4)
		if _, err := readFull(r, body); err != nil {
			return false
		}
		switch h[0] {
		case 'Z':
			if answered == nil {
				return true
			}
		case 'D':
			answered.Add(1)
		case 'E':
			if answered == nil {
				return false
			}
			if strings.Contains(string(body), "C53200") {
				oom.Add(1)
			} else {
				other.Add(1)
			}
		}
	}
}

func readFull(r *bufio.Reader, b []byte) (int, error) {
	n := 0
	for n < len(b) {
		m, err := r.Read(b[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// rss is a process's VmRSS in KiB.
func rss(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return -1
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return n
		}
	}
	return -1
}

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "trickle: "+format+"\n", args...)
	os.Exit(1)
}

package main

import (
	"bufio"
	"strings"
	"testing"
	"time"
)

func TestParseStatCPU(t *testing.T) {
	t.Parallel()
	// Field 2 may hold spaces and parentheses; utime is 150, stime 50.
	line := "4242 (pg (guard) x) S 1 4242 4242 0 -1 4194560 900 0 0 0 150 50 0 0 20 0 9 0 100 1000 500"
	got, err := parseStatCPU([]byte(line))
	if err != nil {
		t.Fatal(err)
	}
	if got.user != 1500*time.Millisecond || got.sys != 500*time.Millisecond {
		t.Fatalf("user %v, system %v; want 1.5s and 0.5s", got.user, got.sys)
	}
	if _, err := parseStatCPU([]byte("4242 (short) S 1 2")); err == nil {
		t.Fatal("short line accepted")
	}
}

func TestLatencies(t *testing.T) {
	t.Parallel()
	log := "0 1 100 0 1700000000 1\n1 1 300 0 1700000000 2\n0 2 failed 0 1700000000 3\n1 2 200 0 1700000000 4\n"
	lat, failed, err := appendLatencies(bufio.NewScanner(strings.NewReader(log)), nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(lat) != 3 || failed != 1 {
		t.Fatalf("got %d latencies and %d failures, want 3 and 1", len(lat), failed)
	}
	if m := mean(lat); m != 200 {
		t.Fatalf("mean = %v, want 200", m)
	}
	if p := percentile(lat, 0.99); p != 300 {
		t.Fatalf("p99 = %v, want 300", p)
	}
	if _, _, err := appendLatencies(bufio.NewScanner(strings.NewReader("0 1 100\n")), nil, 0); err == nil {
		t.Fatal("malformed line accepted")
	}
}

func TestPercentileNearestRank(t *testing.T) {
	t.Parallel()
	xs := make([]int64, 200)
	for i := range xs {
		xs[i] = int64(200 - i) // 200 … 1, unsorted on purpose
	}
	for _, tc := range []struct {
		p    float64
		want float64
	}{{0.5, 100}, {0.99, 198}, {1, 200}} {
		if got := percentile(xs, tc.p); got != tc.want {
			t.Errorf("percentile(%v) = %v, want %v", tc.p, got, tc.want)
		}
	}
}

func TestParseSummary(t *testing.T) {
	t.Parallel()
	out := `transaction type: <builtin: select only>
number of transactions actually processed: 61234
number of failed transactions: 2 (0.003%)
latency average = 0.653 ms
average connection time = 1.234 ms
tps = 12246.812345 (without initial connection time)
`
	var m measurement
	if err := parseSummary(out, &m); err != nil {
		t.Fatal(err)
	}
	if m.txns != 61234 || m.failed != 2 || m.tps != 12246.812345 || m.connMs != 1.234 {
		t.Fatalf("parsed %+v", m)
	}
	if err := parseSummary("pgbench: error: connection refused", &m); err == nil {
		t.Fatal("output without a summary accepted")
	}
}

func TestParseFlags(t *testing.T) {
	t.Parallel()
	o, err := parseFlags([]string{"--duration", "2s", "--clients", "1, 8", "--modes", "prepared", "--connect", ""})
	if err != nil {
		t.Fatal(err)
	}
	if o.duration != 2*time.Second || len(o.clients) != 2 || o.clients[1] != 8 || len(o.modes) != 1 || len(o.connect) != 0 {
		t.Fatalf("parsed %+v", o)
	}
	for _, args := range [][]string{
		{"--duration", "1500ms"},
		{"--clients", "0"},
		{"--clients", ""},
		{"--modes", "fast"},
		{"--scripts", "tpcc"},
		{"extra"},
	} {
		if _, err := parseFlags(args); err == nil {
			t.Errorf("parseFlags(%q) accepted", args)
		}
	}
}

package wire

import (
	"bufio"
	"bytes"
	"io"
	"strings"
	"testing"
)

func TestCopyBodyStreams(t *testing.T) {
	src := strings.Repeat("abcdefgh", 10000)
	r := bufio.NewReaderSize(strings.NewReader(src+"rest"), 64)
	var dst bytes.Buffer
	w := bufio.NewWriterSize(&dst, 64)
	if err := CopyBody(w, r, len(src)); err != nil {
		t.Fatal(err)
	}
	w.Flush()
	if dst.String() != src {
		t.Fatal("body corrupted")
	}
	rest, _ := io.ReadAll(r)
	if string(rest) != "rest" {
		t.Fatalf("CopyBody read past the body: %q", rest)
	}
	if err := CopyBody(w, bufio.NewReader(strings.NewReader("ab")), 5); err == nil {
		t.Fatal("short body not reported")
	}
}

// countingReserver records what ReadGrowing pays for.
type countingReserver struct{ held, peak int }

func (c *countingReserver) Reserve(n int) error {
	c.held += n
	c.peak = max(c.peak, c.held)
	return nil
}
func (c *countingReserver) Release(n int) { c.held -= n }

func TestReadGrowingPaysAsBytesArrive(t *testing.T) {
	for _, n := range []int{1, 100, 8 << 10, 8<<10 + 1, 1 << 20, 3<<20 + 7} {
		src := strings.Repeat("z", n)
		var res countingReserver
		body, err := ReadGrowing(bufio.NewReaderSize(strings.NewReader(src), 8<<10), n, nil, &res)
		if err != nil || string(body) != src {
			t.Fatalf("n=%d: body corrupted (%v)", n, err)
		}
		if cap(body) != n || res.held != n || res.peak != GrowingPeak(n, 8<<10) || res.peak > n+n/2+8<<10 {
			t.Fatalf("n=%d: cap %d, held %d, peak %d (GrowingPeak %d)", n, cap(body), res.held, res.peak, GrowingPeak(n, 8<<10))
		}
		// A client that declares n and sends 10 bytes costs little.
		res = countingReserver{}
		ReadGrowing(bufio.NewReaderSize(strings.NewReader(src[:min(n, 10)]), 8<<10), n+1, nil, &res)
		if res.peak > 8<<10 {
			t.Fatalf("n=%d: %d bytes paid for at most 10 received", n, res.peak)
		}
	}
}

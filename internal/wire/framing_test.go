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

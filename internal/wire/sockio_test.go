package wire

import (
	"bytes"
	"errors"
	"io"
	"math/rand"
	"net"
	"os"
	"testing"
	"time"
)

// tcpPair returns the two ends of a loopback TCP connection.
func tcpPair(t *testing.T) (a, b net.Conn) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := l.Accept()
		accepted <- c
	}()
	a, err = net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	b = <-accepted
	if b == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { a.Close(); b.Close() })
	return a, b
}

// TestSockReaderStream sends bytes in pieces of random sizes with random
// pauses, so that reads come short, full and in between, and checks that
// every byte arrives in order: a wake-up lost after a short read would hang
// the test, a lost or repeated byte would fail it.
func TestSockReaderStream(t *testing.T) {
	src, dst := tcpPair(t)
	r := NewSockReader(dst)
	r.Start()
	defer r.Stop()
	w := NewSockWriter(src)
	if w == nil || r.next == nil {
		t.Fatal("a TCP connection should use the raw socket paths")
	}
	want := make([]byte, 3<<20)
	rng := rand.New(rand.NewSource(1))
	rng.Read(want)
	go func() {
		rng := rand.New(rand.NewSource(2)) // the writer's own
		for off := 0; off < len(want); {
			n := min(1+rng.Intn(64<<10), len(want)-off)
			if rng.Intn(4) == 0 {
				n = min(1+rng.Intn(8), len(want)-off)
			}
			if _, err := w.Write(want[off : off+n]); err != nil {
				t.Error(err)
				return
			}
			off += n
			if rng.Intn(8) == 0 {
				time.Sleep(time.Duration(rng.Intn(300)) * time.Microsecond)
			}
		}
		src.Close()
	}()
	got, err := io.ReadAll(readerFunc(func(p []byte) (int, error) {
		// Vary the buffer too: small buffers make full reads.
		return r.Read(p[:min(len(p), 1+rng.Intn(16<<10))])
	}))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("got %d bytes, want %d; first difference at %d", len(got), len(want), firstDiff(got, want))
	}
}

type readerFunc func([]byte) (int, error)

func (f readerFunc) Read(p []byte) (int, error) { return f(p) }

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// TestSockReaderDeadline: a read deadline ends a blocked Read (as
// awaitOutcome uses it), and once it is cleared the data sent meanwhile is
// read, from another goroutine as well.
func TestSockReaderDeadline(t *testing.T) {
	src, dst := tcpPair(t)
	r := NewSockReader(dst)
	r.Start()
	defer r.Stop()
	buf := make([]byte, 16)
	done := make(chan error, 1)
	go func() {
		_, err := r.Read(buf)
		done <- err
	}()
	time.Sleep(20 * time.Millisecond)
	dst.SetReadDeadline(time.Now())
	if err := <-done; !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Read after the deadline: %v, want a deadline error", err)
	}
	src.Write([]byte("hello"))
	if _, err := r.Read(buf); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Read with the deadline still set: %v", err)
	}
	dst.SetReadDeadline(time.Time{})
	n, err := r.Read(buf)
	if err != nil || string(buf[:n]) != "hello" {
		t.Fatalf("Read = %q, %v; want hello", buf[:n], err)
	}
}

// TestSockReaderClose: closing the connection ends a blocked Read; a
// connection closed while its reader sits between reads is really closed
// (the peer sees EOF) once the reader is stopped, and stop does not hang.
func TestSockReaderClose(t *testing.T) {
	t.Run("blocked", func(t *testing.T) {
		_, dst := tcpPair(t)
		r := NewSockReader(dst)
		r.Start()
		done := make(chan error, 1)
		go func() {
			_, err := r.Read(make([]byte, 8))
			done <- err
		}()
		time.Sleep(20 * time.Millisecond)
		go dst.Close()
		select {
		case err := <-done:
			if !errors.Is(err, net.ErrClosed) {
				t.Fatalf("Read on a closed connection: %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("Close did not end the blocked Read")
		}
		r.Stop()
	})
	t.Run("between reads", func(t *testing.T) {
		src, dst := tcpPair(t)
		r := NewSockReader(dst)
		r.Start()
		src.Write([]byte("x"))
		if _, err := r.Read(make([]byte, 8)); err != nil {
			t.Fatal(err)
		}
		closed := make(chan struct{})
		go func() { dst.Close(); close(closed) }()
		stopped := make(chan struct{})
		go func() { r.Stop(); close(stopped) }()
		for _, ch := range []chan struct{}{stopped, closed} {
			select {
			case <-ch:
			case <-time.After(5 * time.Second):
				t.Fatal("stop or Close hung")
			}
		}
		src.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := src.Read(make([]byte, 1)); err != io.EOF {
			t.Fatalf("the peer reads %v, want EOF", err)
		}
	})
}

// TestSockWriterFull: a write larger than the socket buffers waits for the
// reader instead of failing or spinning.
func TestSockWriterFull(t *testing.T) {
	src, dst := tcpPair(t)
	w := NewSockWriter(src)
	want := bytes.Repeat([]byte("pgguard "), 2<<20) // 16 MiB
	errc := make(chan error, 1)
	go func() {
		n, err := w.Write(want)
		if err == nil && n != len(want) {
			err = io.ErrShortWrite
		}
		errc <- err
	}()
	time.Sleep(50 * time.Millisecond) // let the buffers fill
	got, err := io.ReadAll(io.LimitReader(dst, int64(len(want))))
	if err != nil {
		t.Fatal(err)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("got %d bytes, first difference at %d", len(got), firstDiff(got, want))
	}
}

// TestSockReaderUntilEOF: a peer's last bytes and its end of file in one
// readiness event. After the short read that takes the bytes, no event says
// that the end of file is there: without ReadUntilEOF the next Read waits
// for good (here, until its deadline).
func TestSockReaderUntilEOF(t *testing.T) {
	for _, untilEOF := range []bool{false, true} {
		src, dst := tcpPair(t)
		r := NewSockReader(dst)
		r.Start()
		if untilEOF {
			r.ReadUntilEOF()
		}
		src.Write([]byte("last words"))
		src.Close()
		time.Sleep(50 * time.Millisecond) // both arrive before the first read
		dst.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
		buf := make([]byte, 64)
		n, err := r.Read(buf)
		if err != nil || string(buf[:n]) != "last words" {
			t.Fatalf("first read: %q, %v", buf[:n], err)
		}
		_, err = r.Read(buf)
		var ne net.Error
		timedOut := errors.As(err, &ne) && ne.Timeout()
		switch {
		case untilEOF && err != io.EOF:
			t.Errorf("with ReadUntilEOF: second read: %v, want EOF", err)
		case !untilEOF && !timedOut:
			// Not a failure of ours: then the wait did see the end.
			t.Logf("without ReadUntilEOF: second read: %v (the end of file was seen anyway)", err)
		}
		r.Stop() // no Read in progress: then Close need not wait for it
		dst.Close()
	}
}

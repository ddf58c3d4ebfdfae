package wire

import (
	"errors"
	"io"
	"iter"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"unsafe"
)

// SockReader reads a connection for the relay with one system call per
// arrival of data instead of net.Conn's two.
//
// net.Conn's Read always tries read(2) first and waits for the poller only
// when that fails with EAGAIN. On the relay's request-response traffic the
// socket is empty after almost every message, so half of all reads were
// EAGAIN: the CPU profile showed system calls as most of pgguard's cost, and
// those reads as a quarter of them. A stream socket's read that returns less
// than was asked for has emptied the socket, so SockReader waits for the
// poller after such a short read, and reads only once it says the socket is
// readable again.
//
// It can do so because the wait and the reads happen in one long call of
// syscall.RawConn.Read, which clears the poller's readiness only once, when
// it begins: every byte that arrives later marks the socket readable (the
// poller is edge-triggered) and is not missed. Readers pull with Read, so the
// long call runs in a coroutine (iter.Pull) that hands over one read at a
// time.
//
// Until Start is called, and for connections that are not plain sockets
// (TLS), it is net.Conn's Read.
type SockReader struct {
	conn net.Conn

	mu   sync.Mutex // one Read at a time; stop waits for it
	next func() (struct{}, bool)
	halt func()
	// The Read in progress: the buffer it asked to fill, and its result.
	p   []byte
	n   int
	err error
	// untilEOF is set by ReadUntilEOF.
	untilEOF atomic.Bool
}

// ReadUntilEOF makes every Read from now on try the socket before it waits
// for the poller, as net.Conn's Read does, for a peer that is about to close
// (it was sent a Terminate). Its last bytes and its end of file can come in
// one readiness event: the read that takes the bytes is short, and no later
// event would say that the end of file is there to read.
func (r *SockReader) ReadUntilEOF() { r.untilEOF.Store(true) }

func NewSockReader(conn net.Conn) *SockReader { return &SockReader{conn: conn} }

// Start switches to readiness-driven reads, when conn is a plain socket.
// Call it before any concurrent use, and call Stop when done reading.
func (r *SockReader) Start() {
	sc, ok := r.conn.(syscall.Conn)
	if !ok {
		return
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return
	}
	r.next, r.halt = iter.Pull(func(yield func(struct{}) bool) { r.loop(raw, yield) })
}

// Stop ends the coroutine. It waits for a Read in progress, so close the
// connection first.
func (r *SockReader) Stop() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.halt != nil {
		r.halt()
		r.next, r.halt = nil, nil
	}
}

func (r *SockReader) Read(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.next == nil {
		return r.conn.Read(p)
	}
	if len(p) == 0 {
		return 0, nil
	}
	r.p = p
	if _, ok := r.next(); !ok {
		return 0, net.ErrClosed
	}
	r.p = nil
	return r.n, r.err
}

// loop serves Reads until halted. Each yield hands one result to the Read
// that is waiting; when yield returns, the next Read has set r.p.
func (r *SockReader) loop(raw syscall.RawConn, yield func(struct{}) bool) {
	halted := false
	for !halted {
		err := raw.Read(func(fd uintptr) bool {
			for {
				n, err := rawIO(syscall.SYS_READ, fd, r.p)
				switch {
				case err == syscall.EINTR:
					continue
				case err == syscall.EAGAIN:
					return false // wait for the poller
				case err != nil:
					n, err = 0, os.NewSyscallError("read", err)
				case n == 0:
					err = io.EOF
				}
				r.n, r.err = n, err
				short := n < len(r.p)
				if !yield(struct{}{}) {
					halted = true
					return true
				}
				if err != nil {
					// Let the outer loop start over: a later Read
					// gets the error again (or data, after a deadline).
					return true
				}
				if short && !r.untilEOF.Load() {
					// The socket was emptied; read again only once the
					// poller says more has arrived.
					return false
				}
			}
		})
		if halted {
			return
		}
		if err != nil {
			// A deadline or a closed connection, from the poller.
			var oe *net.OpError
			if errors.As(err, &oe) {
				oe.Op = "read"
			}
			r.n, r.err = 0, err
			halted = !yield(struct{}{})
		}
	}
}

// SockWriter writes a plain socket with rawIO, waiting for the poller only
// when the socket's send buffer is full.
type SockWriter struct {
	raw syscall.RawConn
	// The Write in progress. write is built once: a closure made per
	// Write would be allocated per Write.
	write func(fd uintptr) bool
	p     []byte
	n     int
	err   error
}

// NewSockWriter returns a SockWriter for conn, or nil when conn is not a
// plain socket.
func NewSockWriter(conn net.Conn) *SockWriter {
	sc, ok := conn.(syscall.Conn)
	if !ok {
		return nil
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	w := &SockWriter{raw: raw}
	w.write = func(fd uintptr) bool {
		for w.n < len(w.p) {
			m, err := rawIO(syscall.SYS_WRITE, fd, w.p[w.n:])
			switch err {
			case nil:
				w.n += m
			case syscall.EINTR:
			case syscall.EAGAIN:
				return false // wait for room
			default:
				w.err = os.NewSyscallError("write", err)
				return true
			}
		}
		return true
	}
	return w
}

// Write is called by one goroutine at a time (the session's writer mutex).
func (w *SockWriter) Write(p []byte) (int, error) {
	w.p, w.n, w.err = p, 0, nil
	err := w.raw.Write(w.write)
	n, werr := w.n, w.err
	w.p = nil
	if werr == nil && err != nil {
		var oe *net.OpError
		if errors.As(err, &oe) {
			oe.Op = "write"
		}
		werr = err
	}
	return n, werr
}

// rawIO is read(2) or write(2) on a non-blocking socket, made without
// telling the Go scheduler, the way the runtime's own poller calls
// epoll_wait: such a call cannot block, so the scheduler has nothing to
// hand over, and the bookkeeping of syscall.Syscall is skipped. That
// bookkeeping was a large part of pgguard's CPU: entering a system call
// after the process had been idle woke the runtime's monitor thread, which
// then polled every 20µs. Only call it on a descriptor the caller holds
// through syscall.RawConn, which keeps it from being closed and reused.
func rawIO(trap, fd uintptr, p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	n, _, errno := syscall.RawSyscall(trap, fd, uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
	if errno != 0 {
		return 0, errno
	}
	return int(n), nil
}

// Conn is the connection r reads.
func (r *SockReader) Conn() net.Conn { return r.conn }

//go:build linux

package proxy

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"runtime"
	"runtime/debug"
	"sync"
	"syscall"
	"unsafe"

	"github.com/pgguard/pgguard/internal/wire"
	"github.com/pgguard/pgguard/proxy/enforce"
)

// The event loop relays sessions whose traffic needs nothing but counting,
// as PgBouncer does: one thread, one epoll set over every such session's
// two sockets, read(2) and write(2) as raw system calls into one shared
// buffer, whole messages handed to the machine's Loop methods and
// forwarded unchanged. The goroutine relay (relay.go) costs a wake-up of a
// goroutine, through the Go runtime's poller and scheduler, for every
// message in each direction; bench/floor measured what that structure
// costs against one loop.
//
// A session enters the loop once its login is over, when both connections
// are plain sockets and nothing is buffered, and leaves it for good, handed
// back to the goroutine relay, at the first thing the loop does not do:
// a statement that is not plain (the machine judges it), a message the
// loop does not relay (COPY, Terminate, a message larger than half the
// buffer), a special sync point, an error or end of file on either socket
// (the relay reports it), a socket that does not take a whole write, a
// panic, or a request from another goroutine (close, shutdown). The
// hand-off carries every byte read and not yet relayed, every byte not yet
// written, and the part of a server message still to stream, so the
// goroutine relay goes on from the exact byte where the loop stopped.

// loopBufSize is the loop's shared read buffer. A message longer than half
// of it is left to the goroutine relay, which streams it.
const loopBufSize = 64 << 10

var (
	loopOnce  sync.Once
	theLoop   *eventLoop
	errNoLoop error
)

// sharedLoop returns the process's event loop, started on first use.
func sharedLoop(log *slog.Logger) *eventLoop {
	loopOnce.Do(func() {
		// The loop outlives the server that started it (tests start many):
		// it logs to the default logger.
		theLoop, errNoLoop = newEventLoop(slog.Default())
		if errNoLoop != nil {
			log.Warn("event loop unavailable; every session uses the goroutine relay", "err", errNoLoop)
			return
		}
		// The loop's thread keeps its P while it waits in epoll_wait (a
		// raw system call, so that waking costs no scheduler work): give
		// the rest of the process the Ps it had.
		runtime.GOMAXPROCS(runtime.GOMAXPROCS(0) + 1)
		go theLoop.run()
	})
	return theLoop
}

type eventLoop struct {
	ep, wake int
	log      *slog.Logger

	mu     sync.Mutex
	adds   []*loopSession
	evicts []*loopSession
	broken bool

	// Owned by the loop's thread.
	fds map[int32]loopSide
	buf []byte
}

// loopSide is one socket of a session in the loop.
type loopSide struct {
	ls     *loopSession
	client bool
}

// loopSession is a session while the loop relays it.
type loopSession struct {
	s        *Session
	m        *enforce.Machine
	cfd, sfd int
	handoff  chan handoff // receives exactly one hand-off

	// Owned by the loop's thread.
	cLeft, sLeft []byte // the start of a message, carried to the next read
	sRemain      int    // body bytes of a server message still to stream
	lastServer   wire.ServerMsg
	gone         bool
}

// handoff is what the goroutine relay needs to go on where the loop stopped.
type handoff struct {
	cfd, sfd               int
	fromClient, fromServer []byte // read, not relayed: they come first
	toServer, toClient     []byte // relayed, not written yet: written first
	serverRemain           int    // body bytes of a server message still to stream
	lastServer             wire.ServerMsg
	panicked               any
}

func newEventLoop(log *slog.Logger) (*eventLoop, error) {
	ep, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("epoll_create1: %w", err)
	}
	r, _, errno := syscall.RawSyscall(syscall.SYS_EVENTFD2, 0, syscall.O_CLOEXEC|syscall.O_NONBLOCK, 0)
	if errno != 0 {
		syscall.Close(ep)
		return nil, fmt.Errorf("eventfd2: %w", errno)
	}
	l := &eventLoop{ep: ep, wake: int(r), log: log, fds: make(map[int32]loopSide), buf: make([]byte, loopBufSize)}
	if err := l.watch(l.wake); err != nil {
		syscall.Close(ep)
		syscall.Close(l.wake)
		return nil, err
	}
	return l, nil
}

func (l *eventLoop) watch(fd int) error {
	return syscall.EpollCtl(l.ep, syscall.EPOLL_CTL_ADD, fd, &syscall.EpollEvent{Events: syscall.EPOLLIN, Fd: int32(fd)})
}

// add queues a session for the loop; false when the loop no longer runs.
func (l *eventLoop) add(ls *loopSession) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.broken {
		return false
	}
	l.adds = append(l.adds, ls)
	l.poke()
	return true
}

// evict asks the loop to hand a session back; it may have done so already.
func (l *eventLoop) evict(ls *loopSession) {
	l.mu.Lock()
	l.evicts = append(l.evicts, ls)
	l.poke()
	l.mu.Unlock()
}

func (l *eventLoop) poke() {
	one := uint64(1)
	syscall.Write(l.wake, (*[8]byte)(unsafe.Pointer(&one))[:])
}

// run is the loop. It returns only if epoll itself fails; then every
// session goes back to the goroutine relay and no new one comes.
func (l *eventLoop) run() {
	runtime.LockOSThread()
	events := make([]syscall.EpollEvent, 256)
	for {
		// 1s: the loop comes back to Go code now and then even when idle.
		n, errno := rawEpollWait(l.ep, events, 1000)
		if errno == syscall.EINTR {
			continue
		}
		if errno != 0 {
			l.fail(errno)
			return
		}
		for _, ev := range events[:n] {
			if int(ev.Fd) == l.wake {
				l.inbox()
				continue
			}
			if side, ok := l.fds[ev.Fd]; ok && !side.ls.gone {
				l.serve(side)
			}
		}
	}
}

// inbox takes new sessions and eviction requests.
func (l *eventLoop) inbox() {
	var counter [8]byte
	rawIO(syscall.SYS_READ, l.wake, counter[:])
	l.mu.Lock()
	adds, evicts := l.adds, l.evicts
	l.adds, l.evicts = nil, nil
	l.mu.Unlock()
	for _, ls := range adds {
		if ls.gone {
			// Handed back on an eviction asked for before this add was
			// taken: its descriptors belong to its goroutine now.
			continue
		}
		l.fds[int32(ls.cfd)] = loopSide{ls: ls, client: true}
		l.fds[int32(ls.sfd)] = loopSide{ls: ls}
		if err := l.watch(ls.cfd); err != nil {
			l.handBack(ls, nil, nil, nil, nil)
			continue
		}
		if err := l.watch(ls.sfd); err != nil {
			l.handBack(ls, nil, nil, nil, nil)
		}
	}
	for _, ls := range evicts {
		if !ls.gone {
			l.handBack(ls, nil, nil, nil, nil)
		}
	}
}

func (l *eventLoop) fail(errno syscall.Errno) {
	l.log.Error("event loop failed; its sessions go back to the goroutine relay", "err", errno)
	l.mu.Lock()
	l.broken = true
	adds := l.adds
	l.adds = nil
	l.mu.Unlock()
	for _, ls := range adds {
		if !ls.gone {
			ls.gone = true
			ls.handoff <- handoff{cfd: ls.cfd, sfd: ls.sfd}
		}
	}
	for _, side := range l.fds {
		if side.client && !side.ls.gone {
			l.handBack(side.ls, nil, nil, nil, nil)
		}
	}
}

// serve reads what one socket has and relays it. A panic (a bug) hands
// the session back with it, to be ended like any session that panics.
func (l *eventLoop) serve(side loopSide) {
	defer func() {
		if r := recover(); r != nil {
			ls := side.ls
			if !ls.gone {
				l.handBackPanic(ls, fmt.Sprint(r)+"\n"+string(debug.Stack()))
			}
		}
	}()
	if side.client {
		l.fromClient(side.ls)
	} else {
		l.fromServer(side.ls)
	}
}

// fill reads fd into the shared buffer after the carried bytes left and
// returns the buffer's filled part; ok is false on end of file or an error.
func (l *eventLoop) fill(fd int, left []byte) (b []byte, ok, again bool) {
	k := copy(l.buf, left)
	n, errno := rawIO(syscall.SYS_READ, fd, l.buf[k:])
	switch {
	case errno == syscall.EAGAIN || errno == syscall.EINTR:
		return l.buf[:k], true, true
	case errno != 0 || n == 0:
		return l.buf[:k], false, false
	}
	return l.buf[:k+n], true, false
}

func (l *eventLoop) fromClient(ls *loopSession) {
	b, ok, again := l.fill(ls.cfd, ls.cLeft)
	if again {
		return
	}
	if !ok {
		l.handBack(ls, b, nil, nil, nil)
		return
	}
	off, fast := l.relayClient(ls, b)
	if rest := writeAll(ls.sfd, b[:off]); rest != nil {
		l.handBack(ls, b[off:], nil, rest, nil)
		return
	}
	if !fast {
		l.handBack(ls, b[off:], nil, nil, nil)
		return
	}
	ls.cLeft = append(ls.cLeft[:0], b[off:]...)
}

// relayClient hands the complete client messages at the start of b to the
// machine and returns how many bytes of b to forward; fast is false when
// the message at off is for the goroutine relay.
func (l *eventLoop) relayClient(ls *loopSession, b []byte) (off int, fast bool) {
	m := ls.m
	for off+5 <= len(b) {
		typ := wire.ClientMsg(b[off])
		n := int(binary.BigEndian.Uint32(b[off+1 : off+5]))
		if limit := wire.ClientLimit(typ); limit == 0 || n < 4 || n > limit {
			return off, false // the goroutine relay reports it
		}
		total := 1 + n
		if off+total > len(b) {
			return off, total <= loopBufSize/2
		}
		body := b[off+5 : off+total]
		switch typ {
		case wire.ClientQuery:
			fast = m.LoopQuery(body)
		case wire.ClientParse:
			fast = m.LoopParse(body, b[off+total:])
		case wire.ClientBind:
			fast = m.LoopBind()
		case wire.ClientClose:
			if m.WatchesBinds() {
				m.LoopClose(body)
			} else {
				m.OnExtended()
			}
			fast = true
		case wire.ClientExecute, wire.ClientDescribe:
			m.OnExtended()
			fast = true
		case wire.ClientSync, wire.ClientFunctionCall:
			m.OnSync()
			fast = true
		case wire.ClientFlush:
			fast = true
		default:
			fast = false
		}
		if !fast {
			return off, false
		}
		m.Sent(typ)
		ls.s.bytesIn.Add(int64(total))
		off += total
	}
	return off, true
}

func (l *eventLoop) fromServer(ls *loopSession) {
	b, ok, again := l.fill(ls.sfd, ls.sLeft)
	if again {
		return
	}
	if !ok {
		l.handBack(ls, nil, b, nil, nil)
		return
	}
	off, fast := l.relayServer(ls, b)
	if rest := writeAll(ls.cfd, b[:off]); rest != nil {
		l.handBack(ls, nil, b[off:], nil, rest)
		return
	}
	if !fast {
		l.handBack(ls, nil, b[off:], nil, nil)
		return
	}
	ls.sLeft = append(ls.sLeft[:0], b[off:]...)
}

// relayServer is relayClient's counterpart: it notes ReadyForQuery and
// ParameterStatus as the goroutine relay does, and streams a message that
// has not arrived whole.
func (l *eventLoop) relayServer(ls *loopSession, b []byte) (off int, fast bool) {
	s, m := ls.s, ls.m
	if ls.sRemain > 0 {
		off = min(ls.sRemain, len(b))
		ls.sRemain -= off
	}
	for off+5 <= len(b) {
		if !m.LoopServer() {
			return off, false
		}
		typ := wire.ServerMsg(b[off])
		n := int(binary.BigEndian.Uint32(b[off+1 : off+5]))
		if n < 4 {
			return off, false
		}
		total := 1 + n
		switch {
		case typ == wire.ServerReadyForQuery:
			if n != 5 {
				return off, false
			}
			if off+total > len(b) {
				return off, true
			}
			m.AccountServer(typ)
			m.OnReadyForQuery(b[off+5])
			s.bytesOut.Add(int64(total))
			off += total
			ls.lastServer = typ
			if s.srv.draining() && s.idle() {
				return off, false // the goroutine relay ends it
			}
			continue
		case typ == wire.ServerParameterStatus && n-4 <= enforce.MaxPeekedBody:
			if off+total > len(b) {
				return off, total <= loopBufSize/2
			}
			s.state.SetParameter(b[off+5 : off+total])
			off += total
		default:
			m.AccountServer(typ)
			if off+total > len(b) {
				ls.sRemain = off + total - len(b)
				off = len(b)
			} else {
				off += total
			}
		}
		s.bytesOut.Add(int64(total))
		ls.lastServer = typ
	}
	return off, true
}

// handBack takes a session out of the loop and hands it to its goroutine
// with the bytes given (which alias the shared buffer: they are copied) and
// those the session carried.
func (l *eventLoop) handBack(ls *loopSession, fromClient, fromServer, toServer, toClient []byte) {
	l.release(ls, handoff{
		fromClient: joined(ls.cLeft, fromClient),
		fromServer: joined(ls.sLeft, fromServer),
		toServer:   clone(toServer),
		toClient:   clone(toClient),
	})
}

func (l *eventLoop) handBackPanic(ls *loopSession, p any) {
	// The bytes in flight are lost with the session, which ends.
	l.release(ls, handoff{panicked: p})
}

func (l *eventLoop) release(ls *loopSession, h handoff) {
	ls.gone = true
	syscall.EpollCtl(l.ep, syscall.EPOLL_CTL_DEL, ls.cfd, nil)
	syscall.EpollCtl(l.ep, syscall.EPOLL_CTL_DEL, ls.sfd, nil)
	delete(l.fds, int32(ls.cfd))
	delete(l.fds, int32(ls.sfd))
	h.cfd, h.sfd = ls.cfd, ls.sfd
	h.serverRemain, h.lastServer = ls.sRemain, ls.lastServer
	ls.cLeft, ls.sLeft = nil, nil
	ls.handoff <- h
}

// joined is what a hand-off carries of one direction: the bytes read,
// when the caller read that direction (they start with the carried ones,
// since fill put them first), or else the carried bytes alone.
func joined(carried, read []byte) []byte {
	if read != nil {
		return clone(read)
	}
	return clone(carried)
}

func clone(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return append([]byte(nil), b...)
}

// writeAll writes p to a non-blocking socket and returns what it did not
// take, or nil when it took everything.
func writeAll(fd int, p []byte) []byte {
	for len(p) > 0 {
		n, errno := rawIO(syscall.SYS_WRITE, fd, p)
		switch errno {
		case 0:
			p = p[n:]
		case syscall.EINTR:
		default:
			// EAGAIN (the peer reads slowly) or an error: the goroutine
			// relay writes the rest, waiting or reporting.
			return p
		}
	}
	return nil
}

// rawIO and rawEpollWait are system calls made without telling the Go
// scheduler (see internal/wire's rawIO): read and write cannot block on a
// non-blocking socket, and the loop's thread is its own (LockOSThread),
// with a P of its own (sharedLoop).
func rawIO(trap uintptr, fd int, p []byte) (int, syscall.Errno) {
	r, _, errno := syscall.RawSyscall(trap, uintptr(fd), uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
	return int(r), errno
}

func rawEpollWait(ep int, events []syscall.EpollEvent, msec int) (int, syscall.Errno) {
	r, _, errno := syscall.RawSyscall6(syscall.SYS_EPOLL_WAIT, uintptr(ep), uintptr(unsafe.Pointer(&events[0])), uintptr(len(events)), uintptr(msec), 0, 0)
	return int(r), errno
}

// runInLoop relays the session in the event loop until the loop hands it
// back, then readies the goroutine relay to go on from there. It reports
// false, having changed nothing, when the session cannot enter the loop:
// a TLS connection, bytes already buffered, work of the machine in flight.
func (s *Session) runInLoop() bool {
	if s.srv.cfg.Relay == RelayGoroutines || s.conns.Client != s.clientSock.Conn() ||
		s.conns.FromClient.Buffered() > 0 || s.conns.FromServer.Buffered() > 0 ||
		s.conns.ToClient.Buffered() > 0 || s.conns.ToServer.Buffered() > 0 || !s.m.LoopReady() {
		return false
	}
	loop := sharedLoop(s.srv.cfg.Logger)
	if loop == nil {
		return false
	}
	cfd, err := dupSocket(s.conns.Client)
	if err != nil {
		return false
	}
	sfd, err := dupSocket(s.conns.Server)
	if err != nil {
		syscall.Close(cfd)
		return false
	}
	ls := &loopSession{s: s, m: s.m, cfd: cfd, sfd: sfd, handoff: make(chan handoff, 1)}
	s.loopMu.Lock()
	if s.closing.Load() {
		s.loopMu.Unlock()
		syscall.Close(cfd)
		syscall.Close(sfd)
		return false
	}
	s.loop = ls
	// The loop owns the sockets now, through cfd and sfd; closing these
	// descriptors leaves the connections open.
	s.conns.Client.Close()
	s.conns.Server.Close()
	s.conns.FromClient, s.conns.FromServer, s.conns.ToClient, s.conns.ToServer = nil, nil, nil, nil
	s.loopMu.Unlock()
	if !loop.add(ls) {
		select {
		case ls.handoff <- handoff{cfd: cfd, sfd: sfd}:
		default: // handed back already, on an eviction
		}
	}
	s.takeBack(<-ls.handoff)
	return true
}

// evictFromLoop asks the loop to hand ls back.
func evictFromLoop(ls *loopSession) { theLoop.evict(ls) }

// dupSocket returns a non-blocking, close-on-exec duplicate of a plain
// socket connection's descriptor.
func dupSocket(c net.Conn) (int, error) {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return -1, errors.New("not a socket")
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return -1, err
	}
	fd := -1
	var dupErr error
	if err := raw.Control(func(orig uintptr) {
		r, _, errno := syscall.Syscall(syscall.SYS_FCNTL, orig, syscall.F_DUPFD_CLOEXEC, 0)
		if errno != 0 {
			dupErr = errno
			return
		}
		fd = int(r)
	}); err != nil {
		return -1, err
	}
	if dupErr != nil {
		return -1, dupErr
	}
	return fd, nil
}

// takeBack readies the goroutine relay where the loop stopped: connections
// made from the loop's descriptors, the bytes the loop read first in their
// readers, the bytes it could not write written first.
func (s *Session) takeBack(h handoff) {
	s.log.Debug("session handed back by the event loop", "read_from_client", len(h.fromClient), "read_from_server", len(h.fromServer),
		"unwritten_to_server", len(h.toServer), "unwritten_to_client", len(h.toClient), "server_body_left", h.serverRemain)
	cc, err := fileConn(h.cfd, "client")
	if err != nil {
		syscall.Close(h.sfd)
		s.log.Error("pgguard bug: taking the client connection back from the event loop failed; closing the session", "err", err)
		s.loopMu.Lock()
		s.loop = nil
		s.loopMu.Unlock()
		s.abortLoopless()
		return
	}
	sc, err := fileConn(h.sfd, "server")
	if err != nil {
		cc.Close()
		s.log.Error("pgguard bug: taking the server connection back from the event loop failed; closing the session", "err", err)
		s.loopMu.Lock()
		s.loop = nil
		s.loopMu.Unlock()
		s.abortLoopless()
		return
	}
	// s.loop stays set until the connections are ready: meanwhile close
	// and terminate leave them alone (close is seen to below).
	s.loopMu.Lock()
	s.conns.Client, s.conns.Server = cc, sc
	s.clientSock, s.serverSock = wire.NewSockReader(cc), wire.NewSockReader(sc)
	s.conns.FromClient = bufio.NewReaderSize(prefixed(h.fromClient, s.clientSock), readBufferSize)
	s.conns.FromServer = bufio.NewReaderSize(prefixed(h.fromServer, s.serverSock), readBufferSize)
	s.conns.ToClient = bufio.NewWriterSize(cc, writeBufferSize)
	s.conns.ToServer = bufio.NewWriterSize(sc, writeBufferSize)
	s.loopMu.Unlock()
	s.startSockIO()
	// The relay's loops write first what the event loop could not: a
	// write may wait for a slow peer, and close must be able to end it.
	s.resume = resumed{toServer: h.toServer, toClient: h.toClient, serverRemain: h.serverRemain, lastServer: h.lastServer}
	s.loopMu.Lock()
	s.loop = nil
	closing := s.closing.Load()
	s.loopMu.Unlock()
	if closing {
		cc.Close()
		sc.Close()
	}
	if h.panicked != nil {
		s.log.Error("pgguard bug: panic in the event loop; closing the session", "panic", h.panicked)
		s.abort()
		return
	}
	if s.srv.draining() {
		s.terminate()
	}
}

// abortLoopless ends a session whose connections could not be taken back
// from the loop: its descriptors are closed, the relay finds its readers
// empty and ends.
func (s *Session) abortLoopless() {
	s.conns.FromClient = bufio.NewReader(eofReader{})
	s.conns.FromServer = bufio.NewReader(eofReader{})
	s.conns.ToClient = bufio.NewWriter(io.Discard)
	s.conns.ToServer = bufio.NewWriter(io.Discard)
	s.abort()
}

type eofReader struct{}

func (eofReader) Read([]byte) (int, error) { return 0, io.EOF }

// fileConn makes a net.Conn of a descriptor, which it takes over.
func fileConn(fd int, name string) (net.Conn, error) {
	f := os.NewFile(uintptr(fd), name)
	defer f.Close()
	return net.FileConn(f)
}

// prefixed reads p, then r.
func prefixed(p []byte, r io.Reader) io.Reader {
	if len(p) == 0 {
		return r
	}
	return io.MultiReader(bytes.NewReader(p), r)
}

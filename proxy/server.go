package proxy

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pgguard/pgguard/internal/wire"
	"github.com/pgguard/pgguard/proxy/enforce"

	"github.com/pgguard/pgguard/internal/observe"
)

// Server accepts clients on every target's listen address and runs a Session
// for each.
type Server struct {
	cfg       Config
	listeners []net.Listener
	// memory is the statement memory all sessions share.
	memory *enforce.Memory

	active     atomic.Int64 // admitted client sessions
	isDraining atomic.Bool

	mu       sync.Mutex
	sessions map[*Session]struct{}
	wg       sync.WaitGroup // one per accepted connection
	acceptWG sync.WaitGroup
}

// New validates cfg and returns a Server that is not listening yet.
func New(cfg Config) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Server{cfg: cfg, sessions: make(map[*Session]struct{}),
		memory: enforce.NewMemory(StatementBudget(cfg.Limits.MaxStatementMemory), cfg.Limits.StatementMemoryWait)}, nil
}

// StatementBudget is the part of --max-statement-memory that statement
// messages may hold: the rest (an eighth, at most 32MB) is left for the
// process's own memory (the runtime, each session's small buffers), so
// that pgguard's resident memory stays under the setting under abuse.
func StatementBudget(total int64) int64 {
	return total - min(total/8, 32<<20)
}

// StatementMemory returns the budget of the statement messages that all
// sessions hold (Limits.MaxStatementMemory), for metrics and tests.
func (srv *Server) StatementMemory() *enforce.Memory { return srv.memory }

// Listen binds every target's listen address, so that a port in use is a
// start-up error rather than a log line.
func (srv *Server) Listen() error {
	for i := range srv.cfg.Targets {
		t := &srv.cfg.Targets[i]
		l, err := net.Listen("tcp", t.Listen)
		if err != nil {
			for _, l := range srv.listeners {
				l.Close()
			}
			srv.listeners = nil
			return fmt.Errorf("target %s: listening on %s: %w", t.Name, t.Listen, err)
		}
		srv.listeners = append(srv.listeners, l)
	}
	return nil
}

// Addrs returns the bound listen addresses, in target order.
func (srv *Server) Addrs() []net.Addr {
	out := make([]net.Addr, len(srv.listeners))
	for i, l := range srv.listeners {
		out[i] = l.Addr()
	}
	return out
}

// Serve accepts connections until Shutdown. It calls Listen first if needed.
func (srv *Server) Serve() error {
	if srv.listeners == nil {
		if err := srv.Listen(); err != nil {
			return err
		}
	}
	for i, l := range srv.listeners {
		srv.acceptWG.Add(1)
		go srv.acceptLoop(l, &srv.cfg.Targets[i])
	}
	for i := range srv.cfg.Targets {
		t := &srv.cfg.Targets[i]
		srv.cfg.Logger.Info("listening", "target", t.Name, "listen", srv.listeners[i].Addr().String(), "upstream", t.Upstream, "upstream_tls", string(t.UpstreamTLS))
	}
	srv.acceptWG.Wait()
	return nil
}

func (srv *Server) acceptLoop(l net.Listener, t *Target) {
	defer srv.acceptWG.Done()
	var backoff time.Duration
	for {
		conn, err := l.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of file descriptors and the like: back off, do not spin.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			srv.cfg.Logger.Error("accept failed", "target", t.Name, "err", err)
			time.Sleep(backoff)
			continue
		}
		backoff = 0
		if tc, ok := conn.(*net.TCPConn); ok {
			tc.SetNoDelay(true)
		}
		sock := wire.NewSockReader(conn)
		s := &Session{
			srv:        srv,
			target:     t,
			log:        srv.cfg.Logger.With("target", t.Name),
			clientSock: sock,
			closed:     make(chan struct{}),
		}
		s.conns.Client = conn
		s.conns.FromClient = bufio.NewReaderSize(sock, readBufferSize)
		s.conns.ToClient = bufio.NewWriterSize(conn, writeBufferSize)
		s.state.Target = t.Name
		s.state.ClientAddr = conn.RemoteAddr().String()
		srv.mu.Lock()
		if srv.isDraining.Load() {
			srv.mu.Unlock()
			conn.Close()
			continue
		}
		srv.sessions[s] = struct{}{}
		srv.wg.Add(1)
		srv.mu.Unlock()
		go func() {
			defer srv.wg.Done()
			defer func() {
				srv.mu.Lock()
				delete(srv.sessions, s)
				srv.mu.Unlock()
			}()
			s.serve()
		}()
	}
}

// admit takes a client slot, or reports false when MaxConnections are in use.
func (srv *Server) admit() bool {
	n := srv.active.Add(1)
	if srv.cfg.MaxConnections > 0 && n > int64(srv.cfg.MaxConnections) {
		srv.active.Add(-1)
		return false
	}
	return true
}

func (srv *Server) release() { srv.active.Add(-1) }

// ActiveSessions is the number of admitted client sessions.
func (srv *Server) ActiveSessions() int { return int(srv.active.Load()) }

// Full reports whether MaxConnections are all in use.
func (srv *Server) Full() bool {
	return srv.cfg.MaxConnections > 0 && srv.ActiveSessions() >= srv.cfg.MaxConnections
}

func (srv *Server) hooks() observe.Observer {
	if srv.cfg.Observer == nil {
		return observe.Nop{}
	}
	return srv.cfg.Observer
}

func (srv *Server) draining() bool { return srv.isDraining.Load() }

// Draining reports whether Shutdown has begun.
func (srv *Server) Draining() bool { return srv.draining() }

// abortWait bounds how long Shutdown waits for sessions it closed.
const abortWait = 3 * time.Second

func (srv *Server) sessionCount() int {
	srv.mu.Lock()
	defer srv.mu.Unlock()
	return len(srv.sessions)
}

// Shutdown stops accepting, ends idle sessions at once and the others as soon
// as they are idle (no statement running, no transaction open), and closes
// whatever is left when ctx ends. It returns ctx.Err() if sessions had to be
// cut.
func (srv *Server) Shutdown(ctx context.Context) error {
	srv.mu.Lock()
	srv.isDraining.Store(true)
	for _, l := range srv.listeners {
		l.Close()
	}
	srv.mu.Unlock()
	srv.acceptWG.Wait()

	done := make(chan struct{})
	go func() { srv.wg.Wait(); close(done) }()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		// Sessions that become idle end themselves after their next
		// ReadyForQuery; this sweep catches those that were idle already.
		srv.mu.Lock()
		for s := range srv.sessions {
			s.terminate()
		}
		srv.mu.Unlock()
		select {
		case <-done:
			return nil
		case <-ctx.Done():
			srv.mu.Lock()
			n := len(srv.sessions)
			for s := range srv.sessions {
				s.abort()
			}
			srv.mu.Unlock()
			// Closed sessions end at once; should one not (a bug), the
			// process must still be able to stop.
			select {
			case <-done:
			case <-time.After(abortWait):
				srv.cfg.Logger.Error("sessions did not end after being closed; stopping without them", "sessions", srv.sessionCount())
			}
			srv.cfg.Logger.Warn("shutdown delay expired; closed sessions still running", "sessions", n)
			return ctx.Err()
		case <-tick.C:
		}
	}
}

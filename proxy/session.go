package proxy

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pgguard/pgguard/internal/pgcatalog"
	"github.com/pgguard/pgguard/internal/wire"
	"github.com/pgguard/pgguard/proxy/enforce"
)

// Buffer sizes per direction. Small enough that an idle connection costs
// little; large messages stream through them without being held whole.
const (
	readBufferSize  = 8 << 10
	writeBufferSize = 8 << 10
)

// errLoginRefused is a server that refused the login with an ErrorResponse,
// already relayed to the client.
var errLoginRefused = errors.New("server refused the login")

// Session is one client connection and its server connection.
type Session struct {
	srv    *Server
	target *Target
	log    *slog.Logger
	state  enforce.State

	// conns are the two connections, shared with the machine (see
	// enforce.Conns for who reads and writes what).
	conns      enforce.Conns
	clientSock *wire.SockReader // what conns.FromClient reads, unless the client uses TLS
	serverSock *wire.SockReader // what conns.FromServer reads

	// m is the enforcement machine; with no policy it only counts sync
	// points. It is set before relaying.
	m *enforce.Machine

	// relaying is set once authentication is over and the copy loops run.
	relaying atomic.Bool
	// closing is set once the session is being torn down on purpose.
	closing atomic.Bool
	// serverEnds is set by the client-to-server loop when it sent the
	// server a Terminate: the relay then waits for the server's end.
	serverEnds bool
	closeOnce  sync.Once
	// closed is closed by close(), so that waits end with the session.
	closed chan struct{}

	bytesIn, bytesOut atomic.Int64

	// loop is set while the event loop relays the session (loop_linux.go);
	// loopMu orders that with close, which then asks the loop for the
	// session back instead of closing connections the loop owns.
	loopMu sync.Mutex
	loop   *loopSession
	// resume is where the event loop stopped, for the relay's loops.
	resume resumed
}

// resumed is what the event loop left for the goroutine relay to do first
// when it handed the session back.
type resumed struct {
	toServer, toClient []byte         // relayed, not written yet
	serverRemain       int            // body bytes of a server message not relayed yet
	lastServer         wire.ServerMsg // the type of the last server message
}

// enforcing reports whether a policy judges the session's statements.
func (s *Session) enforcing() bool { return s.srv.cfg.Policy != nil }

// life is the session as the machine sees it (enforce.Session).
type life struct{ s *Session }

func (l life) Done() <-chan struct{} { return l.s.closed }
func (l life) Closing() bool         { return l.s.closing.Load() }
func (l life) Close()                { l.s.close() }
func (l life) CancelRunning()        { l.s.cancelRunning() }

// startMachine gives the session its enforcement machine, once the
// connections are final, before the relay starts.
func (s *Session) startMachine() {
	lim := s.srv.cfg.Limits
	// A target serving several databases borrows, per session database,
	// that database's counterpart's sizes (or none).
	sizes := s.target.Sizes
	if d, ok := sizes.(pgcatalog.DatabaseSizes); ok {
		sizes = d.For(s.state.Database)
	}
	s.m = enforce.New(&s.conns, life{s}, &s.state, enforce.Config{
		Policy:              s.srv.cfg.Policy,
		Observer:            s.srv.cfg.Observer,
		Log:                 s.log,
		Profile:             s.target.Profile,
		MaxStatementMessage: lim.MaxStatementMessage,
		MaxHeldAnswer:       lim.MaxHeldAnswer,
		Memory:              s.srv.memory,
		Sizes:               sizes,
	})
}

// idle reports whether nothing is running and no transaction is open, so the
// session can be closed without losing anything.
func (s *Session) idle() bool {
	return s.m.Pending() == 0 && s.state.TxStatus() == 'I'
}

// close closes both connections once. Reads and writes blocked on them
// fail at once. The sockets themselves are closed in the background: a
// wire.SockReader that is between two reads holds its socket open (net's Close
// waits for that) until its relay loop reads again or stops it.
func (s *Session) close() {
	s.closeOnce.Do(func() {
		s.closing.Store(true)
		close(s.closed)
		s.loopMu.Lock()
		ls := s.loop
		if ls == nil {
			go s.conns.Client.Close()
			if s.conns.Server != nil {
				go s.conns.Server.Close()
			}
		}
		s.loopMu.Unlock()
		if ls != nil {
			// The session's goroutine closes the connections it gets back.
			evictFromLoop(ls)
		}
	})
}

// recoverPanic turns a bug met by one session into the end of that session
// (logged with its stack) instead of the end of every session in the process.
func (s *Session) recoverPanic(where string) {
	if r := recover(); r != nil {
		s.log.Error("pgguard bug: panic in "+where+"; closing the session", "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
		if s.relaying.Load() && s.m.Pending() > 0 {
			s.cancelRunning()
		}
		s.close()
	}
}

// abort closes the session now, cancelling a running statement first so
// that its backend does not go on holding locks for nobody.
func (s *Session) abort() {
	if s.relaying.Load() && s.m.Pending() > 0 && !s.closing.Load() {
		s.cancelRunning()
	}
	s.close()
}

// serve runs the session from the first byte to the last.
func (s *Session) serve() {
	defer s.close()
	defer s.recoverPanic("session")
	start := time.Now()
	s.conns.Client.SetDeadline(start.Add(s.srv.cfg.StartupTimeout))
	conn, cr, startup, cancel, err := clientStartup(s.conns.Client, s.conns.FromClient, s.srv.cfg.ClientTLS)
	s.conns.Client, s.conns.FromClient = conn, cr
	s.conns.ToClient.Reset(conn)
	if cancel != nil {
		s.forwardCancel(cancel)
		return
	}
	if err != nil {
		// The answers PostgreSQL gives to the same packets, in its words:
		// the client cannot tell pgguard from the server here.
		var pe *wire.ProtocolError
		var pge *wire.PGError
		switch {
		case errors.As(err, &pge):
			s.conns.ToClient.Write(pge.Encode(nil, false))
			s.conns.ToClient.Flush()
		case errors.As(err, &pe) && !pe.Silent:
			wire.SendFatal(s.conns.ToClient, wire.CodeProtocolViolation, pe.Msg, "")
		}
		if !errors.Is(err, io.EOF) {
			s.log.Debug("client startup failed", "client", s.state.ClientAddr, "err", err)
		}
		return
	}
	s.state.User = startup.Get("user")
	s.state.Database = startup.Get("database")
	if s.state.Database == "" {
		s.state.Database = s.state.User
	}
	s.state.ApplicationName = startup.Get("application_name")
	log := s.log.With("client", s.state.ClientAddr, "user", s.state.User, "database", s.state.Database, "application_name", s.state.ApplicationName)

	if s.enforcing() {
		if pge := s.applyLockTimeout(startup); pge != nil {
			s.conns.ToClient.Write(pge.Encode(nil, false))
			s.conns.ToClient.Flush()
			log.Warn("connection refused: startup lock_timeout", "reason", pge.Message)
			return
		}
	}
	if !s.srv.admit() {
		wire.SendFatal(s.conns.ToClient, wire.CodeTooManyConnections, "sorry, too many clients already", fmt.Sprintf("pgguard allows at most %d client connections.", s.srv.cfg.MaxConnections))
		log.Warn("connection refused: max connections reached", "max_connections", s.srv.cfg.MaxConnections)
		return
	}
	defer s.srv.release()

	dialStart := time.Now()
	ctx, cancelDial := context.WithTimeout(context.Background(), s.srv.cfg.ConnectTimeout)
	server, err := dialUpstream(ctx, s.target)
	cancelDial()
	if err != nil {
		s.srv.hooks().UpstreamConnect(s.target.Name, time.Since(dialStart), err)
		wire.SendFatal(s.conns.ToClient, wire.CodeConnectionFailure,
			fmt.Sprintf("pgguard: could not connect to the server at %s: %v", s.target.Upstream, err),
			"pgguard accepted the connection but could not reach the PostgreSQL server behind it.")
		log.Error("upstream connect failed", "upstream", s.target.Upstream, "err", err)
		return
	}
	s.conns.Server = server
	s.serverSock = wire.NewSockReader(server)
	s.conns.FromServer = bufio.NewReaderSize(s.serverSock, readBufferSize)
	s.conns.ToServer = bufio.NewWriterSize(server, writeBufferSize)
	if s.closing.Load() {
		return
	}
	// The server's first answer must come within the connect timeout: a
	// server that accepts and then says nothing is as unreachable as one
	// that refuses.
	s.conns.Server.SetDeadline(time.Now().Add(s.srv.cfg.ConnectTimeout))
	s.conns.ToServer.Write(startup.encode())
	err = s.conns.ToServer.Flush()
	if err == nil {
		_, err = s.conns.FromServer.Peek(1)
	}
	s.srv.hooks().UpstreamConnect(s.target.Name, time.Since(dialStart), err)
	if err != nil {
		wire.SendFatal(s.conns.ToClient, wire.CodeConnectionFailure, fmt.Sprintf("pgguard: the server at %s did not answer the startup message: %v", s.target.Upstream, err),
			"pgguard reached the server but got no answer within the connect timeout.")
		log.Error("upstream startup failed", "upstream", s.target.Upstream, "err", err)
		return
	}
	s.conns.Server.SetDeadline(time.Now().Add(s.srv.cfg.StartupTimeout))
	if err := s.relayAuth(); err != nil {
		var pge *wire.PGError
		switch {
		case errors.As(err, &pge):
			s.conns.ToClient.Write(pge.Encode(nil, false))
			s.conns.ToClient.Flush()
			log.Warn("login refused by pgguard", "reason", pge.Message)
		case errors.Is(err, errLoginRefused):
			log.Info("login refused by server")
		default:
			log.Warn("authentication relay failed", "err", err)
		}
		return
	}
	s.conns.Client.SetDeadline(time.Time{})
	s.conns.Server.SetDeadline(time.Time{})
	log.Info("connection opened")
	s.startMachine()
	s.relaying.Store(true)
	s.srv.hooks().ConnectionOpened(s.target.Name)
	if !s.runInLoop() {
		s.startSockIO()
	}
	reason := s.relay()
	s.srv.hooks().ConnectionClosed(s.target.Name, s.bytesIn.Load(), s.bytesOut.Load())
	log.Info("connection closed", "duration", time.Since(start).Round(time.Millisecond).String(),
		"bytes_from_client", s.bytesIn.Load(), "bytes_from_server", s.bytesOut.Load(), "reason", reason)
}

func (s *Session) forwardCancel(c *cancelRequest) {
	ctx, cancel := context.WithTimeout(context.Background(), s.srv.cfg.ConnectTimeout)
	defer cancel()
	if err := sendCancel(ctx, s.target, c.pid, c.key); err != nil {
		s.log.Warn("forwarding cancel request failed", "upstream", s.target.Upstream, "err", err)
		return
	}
	s.log.Debug("cancel request forwarded", "pid", c.pid)
}

// cancelRunning asks the server to cancel whatever the session's backend is
// running, for a client that went away mid-statement.
func (s *Session) cancelRunning() {
	pid, key := s.state.BackendKey()
	if pid == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.srv.cfg.ConnectTimeout)
	defer cancel()
	if err := sendCancel(ctx, s.target, pid, key); err != nil {
		s.log.Warn("cancelling the statement of a departed client failed", "err", err)
	}
}

// terminate ends an idle session during shutdown the way PostgreSQL ends it:
// FATAL 57P01 to the client, Terminate to the server. It does nothing and
// returns false when the session is not idle.
func (s *Session) terminate() bool {
	s.loopMu.Lock()
	ls := s.loop
	s.loopMu.Unlock()
	if ls != nil {
		// The event loop relays it: once handed back, the session ends
		// itself (takeBack) or at the next sweep.
		evictFromLoop(ls)
		return false
	}
	s.conns.ToClientMu.Lock()
	if !s.relaying.Load() || !s.idle() || s.closing.Load() {
		s.conns.ToClientMu.Unlock()
		return false
	}
	s.closing.Store(true)
	e := &wire.PGError{Severity: "FATAL", Code: wire.CodeAdminShutdown, Message: "terminating connection because pgguard is shutting down"}
	s.conns.ToClient.Write(e.Encode(nil, false))
	s.conns.ToClient.Flush()
	s.conns.ToClientMu.Unlock()
	s.conns.ToServerMu.Lock()
	wire.WriteMessage(s.conns.ToServer, wire.ClientTerminate, nil)
	s.conns.ToServer.Flush()
	s.conns.ToServerMu.Unlock()
	s.close()
	return true
}

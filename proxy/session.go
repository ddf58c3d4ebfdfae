package proxy

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pgguard/pgguard/policy"

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

	client     net.Conn
	clientSock *wire.SockReader // what cr reads, unless the client uses TLS
	cr         *bufio.Reader
	cw         *bufio.Writer
	cwMu       sync.Mutex // held while writing to cw (the relay and a draining shutdown)

	server     net.Conn
	serverSock *wire.SockReader // what sr reads
	sr         *bufio.Reader
	sw         *bufio.Writer
	swMu       sync.Mutex // held while writing to sw

	// pending counts the Query, Sync and FunctionCall messages sent to the
	// server whose ReadyForQuery has not come back yet: non-zero means a
	// statement may be running.
	pending atomic.Int32
	// relaying is set once authentication is over and the copy loops run.
	relaying atomic.Bool
	// closing is set once the session is being torn down on purpose.
	closing   atomic.Bool
	closeOnce sync.Once
	// closed is closed by close(), so that waits end with the session.
	closed chan struct{}

	bytesIn, bytesOut atomic.Int64
	// buildingIndex names the index of a concurrent statement in flight,
	// so that a client whose server dies is told what may be left behind.
	buildingIndex atomic.Pointer[string]

	// sent and received count sync points (Query, Sync, FunctionCall) sent
	// by the client-to-server loop and answered (ReadyForQuery) as seen by
	// the server-to-client loop; each is owned by its loop.
	sent, received uint64
	// syncs queues the sync points that need more than counting.
	syncs syncQueue
	// idleSignal is poked when pending drops to zero.
	idleSignal chan struct{}
	// tx remembers tables created and constraints added NOT VALID in the
	// open transaction.
	tx policy.TxMemory
	// Owned by the client-to-server loop: whether extended-protocol
	// messages were sent since the last Sync, the special sync point of
	// that batch, work to do once its Sync is sent, and a reusable buffer.
	unsynced bool
	batch    *syncPoint
	// batchChangesLockTimeout: a statement of the open batch may change
	// lock_timeout (policy.MayChangeLockTimeout).
	batchChangesLockTimeout bool
	// tools recognises the migration tool behind the session from the
	// ledger tables its statements name.
	tools policy.ToolSense
	// committed lists DDL committed in autocommit since the tool last
	// recorded a migration (written by the server-to-client loop).
	committed committed
	// rewrittenStmts are prepared statements rewritten to CONCURRENTLY,
	// or that wait for an advisory lock, prepared without being run; their
	// Bind decides whether lock_timeout is lifted (onBind).
	rewrittenStmts map[string]*verdict
	afterSync      func() error
	qbuf           []byte
	pctx           policy.Context
	catalog        pgcatalog.Catalog

	// ledgerStmts (client loop) are prepared ledger INSERTs that carry the
	// migration's name in a bind parameter; their Bind reports the record
	// (ledgerBind).
	ledgerStmts map[string]ledgerStmt
}

// idle reports whether nothing is running and no transaction is open, so the
// session can be closed without losing anything.
func (s *Session) idle() bool {
	return s.pending.Load() == 0 && s.state.TxStatus() == 'I'
}

// close closes both connections once. Reads and writes blocked on them
// fail at once. The sockets themselves are closed in the background: a
// wire.SockReader that is between two reads holds its socket open (net's Close
// waits for that) until its relay loop reads again or stops it.
func (s *Session) close() {
	s.closeOnce.Do(func() {
		s.closing.Store(true)
		close(s.closed)
		go s.client.Close()
		if s.server != nil {
			go s.server.Close()
		}
	})
}

// recoverPanic turns a bug met by one session into the end of that session
// (logged with its stack) instead of the end of every session in the process.
func (s *Session) recoverPanic(where string) {
	if r := recover(); r != nil {
		s.log.Error("pgguard bug: panic in "+where+"; closing the session", "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
		if s.relaying.Load() && s.pending.Load() > 0 {
			s.cancelRunning()
		}
		s.close()
	}
}

// abort closes the session now, cancelling a running statement first so
// that its backend does not go on holding locks for nobody.
func (s *Session) abort() {
	if s.relaying.Load() && s.pending.Load() > 0 && !s.closing.Load() {
		s.cancelRunning()
	}
	s.close()
}

// serve runs the session from the first byte to the last.
func (s *Session) serve() {
	defer s.close()
	defer s.recoverPanic("session")
	start := time.Now()
	s.client.SetDeadline(start.Add(s.srv.cfg.StartupTimeout))
	conn, cr, startup, cancel, err := clientStartup(s.client, s.cr, s.srv.cfg.ClientTLS)
	s.client, s.cr = conn, cr
	s.cw.Reset(conn)
	if cancel != nil {
		s.forwardCancel(cancel)
		return
	}
	if err != nil {
		var pe *wire.ProtocolError
		if errors.As(err, &pe) {
			wire.SendFatal(s.cw, wire.CodeProtocolViolation, "pgguard: "+pe.Msg, "")
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
			s.cw.Write(pge.Encode(nil, false))
			s.cw.Flush()
			log.Warn("connection refused: startup lock_timeout", "reason", pge.Message)
			return
		}
	}
	if !s.srv.admit() {
		wire.SendFatal(s.cw, wire.CodeTooManyConnections, "sorry, too many clients already", fmt.Sprintf("pgguard allows at most %d client connections.", s.srv.cfg.MaxConnections))
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
		wire.SendFatal(s.cw, wire.CodeConnectionFailure,
			fmt.Sprintf("pgguard: could not connect to the server at %s: %v", s.target.Upstream, err),
			"pgguard accepted the connection but could not reach the PostgreSQL server behind it.")
		log.Error("upstream connect failed", "upstream", s.target.Upstream, "err", err)
		return
	}
	s.server = server
	s.serverSock = wire.NewSockReader(server)
	s.sr = bufio.NewReaderSize(s.serverSock, readBufferSize)
	s.sw = bufio.NewWriterSize(server, writeBufferSize)
	if s.closing.Load() {
		return
	}
	// The server's first answer must come within the connect timeout: a
	// server that accepts and then says nothing is as unreachable as one
	// that refuses.
	s.server.SetDeadline(time.Now().Add(s.srv.cfg.ConnectTimeout))
	s.sw.Write(startup.encode())
	err = s.sw.Flush()
	if err == nil {
		_, err = s.sr.Peek(1)
	}
	s.srv.hooks().UpstreamConnect(s.target.Name, time.Since(dialStart), err)
	if err != nil {
		wire.SendFatal(s.cw, wire.CodeConnectionFailure, fmt.Sprintf("pgguard: the server at %s did not answer the startup message: %v", s.target.Upstream, err),
			"pgguard reached the server but got no answer within the connect timeout.")
		log.Error("upstream startup failed", "upstream", s.target.Upstream, "err", err)
		return
	}
	s.server.SetDeadline(time.Now().Add(s.srv.cfg.StartupTimeout))
	if err := s.relayAuth(); err != nil {
		var pge *wire.PGError
		switch {
		case errors.As(err, &pge):
			s.cw.Write(pge.Encode(nil, false))
			s.cw.Flush()
			log.Warn("login refused by pgguard", "reason", pge.Message)
		case errors.Is(err, errLoginRefused):
			log.Info("login refused by server")
		default:
			log.Warn("authentication relay failed", "err", err)
		}
		return
	}
	s.client.SetDeadline(time.Time{})
	s.server.SetDeadline(time.Time{})
	log.Info("connection opened")
	s.startSockIO()
	s.relaying.Store(true)
	s.srv.hooks().ConnectionOpened(s.target.Name)
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
	s.cwMu.Lock()
	if !s.relaying.Load() || !s.idle() || s.closing.Load() {
		s.cwMu.Unlock()
		return false
	}
	s.closing.Store(true)
	e := &wire.PGError{Severity: "FATAL", Code: wire.CodeAdminShutdown, Message: "terminating connection because pgguard is shutting down"}
	s.cw.Write(e.Encode(nil, false))
	s.cw.Flush()
	s.cwMu.Unlock()
	s.swMu.Lock()
	wire.WriteMessage(s.sw, wire.ClientTerminate, nil)
	s.sw.Flush()
	s.swMu.Unlock()
	s.close()
	return true
}

package proxy

import (
	"errors"
	"io"

	"github.com/pgguard/pgguard/internal/wire"
	"github.com/pgguard/pgguard/proxy/enforce"
)

// reasonTerminated is how a session that the client ended ends.
const reasonTerminated = "client terminated"

// relay runs the two copy loops until either side ends and returns why.
func (s *Session) relay() string {
	defer func() {
		s.clientSock.Stop()
		s.serverSock.Stop()
	}()
	done := make(chan string, 1)
	go func() {
		reason := "panic"
		defer func() { done <- reason }()
		defer s.recoverPanic("server-to-client relay")
		reason = s.serverToClient()
		// A session whose server side ended is torn down in whatever state
		// it is: nothing will answer what the client-to-server loop waits for.
		s.close()
	}()
	reason := s.clientToServer()
	var r2 string
	if s.serverEnds {
		// The server answers what came before the Terminate, then closes:
		// the answers reach the client first, as they do from PostgreSQL.
		r2 = <-done
		s.close()
	} else {
		s.close()
		r2 = <-done
	}
	s.m.Drain()
	if reason == "closed" {
		reason = r2
	}
	return reason
}

// clientToServer forwards client messages. Everything is raw bytes; only the
// type byte is looked at, except Query and Parse, which the machine judges
// when there is a policy, and the Bind of a statement it watches. Writes are
// batched: the writer is flushed only when the client has nothing more
// buffered, so a pipeline goes out in one write.
func (s *Session) clientToServer() string {
	if len(s.resume.toServer) > 0 {
		// What the event loop relayed and the server's socket did not take.
		s.conns.ToServerMu.Lock()
		s.conns.ToServer.Write(s.resume.toServer)
		err := s.conns.ToServer.Flush()
		s.conns.ToServerMu.Unlock()
		if err != nil {
			if s.closing.Load() {
				return "closed"
			}
			return "server write failed: " + err.Error()
		}
	}
	for {
		typ, n, err := wire.ReadClientHeader(s.conns.FromClient)
		if err != nil {
			var pe *wire.ProtocolError
			if errors.As(err, &pe) && !s.closing.Load() {
				// PostgreSQL answers what came before, then closes: without
				// a word after a length it refuses, with a FATAL after a
				// type it does not know, which the server is given to say.
				// So does the session, the way it ends at a Terminate.
				if !pe.Silent {
					s.conns.ToServerMu.Lock()
					s.conns.ToServer.WriteByte(pe.Type)
					s.conns.ToServerMu.Unlock()
				}
				s.endServer()
				return "client protocol violation: " + pe.Msg
			}
			return s.clientGone(err)
		}
		s.bytesIn.Add(int64(n + 5))
		switch typ {
		case wire.ClientQuery:
			if s.enforcing() {
				err = s.m.OnQuery(n)
				break
			}
			s.m.OnSync()
			err = s.conns.Forward(typ, n)
		case wire.ClientParse:
			if s.enforcing() {
				err = s.m.OnParse(n)
				break
			}
			s.m.OnExtended()
			err = s.conns.Forward(typ, n)
		case wire.ClientSync, wire.ClientFunctionCall:
			s.m.OnSync()
			err = s.conns.Forward(typ, n)
			if err == nil {
				err = s.m.AfterSync()
			}
		case wire.ClientTerminate:
			// PostgreSQL runs what came before the Terminate and answers it
			// before it closes; so does the session (relay). The server's
			// end of file is then no loss.
			s.endServer()
			return reasonTerminated
		case wire.ClientBind:
			if s.m.WatchesBinds() {
				err = s.m.OnBind(n)
				break
			}
			s.m.OnExtended()
			err = s.conns.Forward(typ, n)
		case wire.ClientClose:
			if s.m.WatchesBinds() {
				err = s.m.OnClose(n)
				break
			}
			s.m.OnExtended()
			err = s.conns.Forward(typ, n)
		case wire.ClientExecute, wire.ClientDescribe:
			// Extended-protocol work that runs in the implicit transaction
			// ended by the next Sync.
			s.m.OnExtended()
			err = s.conns.Forward(typ, n)
		default: // COPY data and Flush
			err = s.conns.Forward(typ, n)
		}
		if err != nil {
			var pe *wire.ProtocolError
			switch {
			case errors.Is(err, enforce.ErrClientLeft):
				return "client disconnected mid-statement; statement cancelled"
			case errors.As(err, &pe):
				return s.clientGone(err)
			case s.closing.Load():
				return "closed"
			}
			return "server write failed: " + err.Error()
		}
	}
}

// endServer sends the server a Terminate: it answers what came before it,
// then closes, and the relay ends once those answers reached the client.
func (s *Session) endServer() {
	s.closing.Store(true)
	s.serverEnds = true
	s.serverSock.ReadUntilEOF()
	s.conns.ToServerMu.Lock()
	wire.WriteMessage(s.conns.ToServer, wire.ClientTerminate, nil)
	s.conns.ToServer.Flush()
	s.conns.ToServerMu.Unlock()
}

// clientGone handles a client read error: a client that vanished while a
// statement runs gets that statement cancelled, so that it does not go on
// holding locks on the server with nobody waiting for it.
func (s *Session) clientGone(err error) string {
	if s.closing.Load() {
		return "closed"
	}
	if s.m.Pending() > 0 {
		s.cancelRunning()
		return "client disconnected mid-statement; statement cancelled"
	}
	var pe *wire.ProtocolError
	if errors.As(err, &pe) {
		s.conns.ToClientMu.Lock()
		wire.SendFatal(s.conns.ToClient, wire.CodeProtocolViolation, "pgguard: "+pe.Msg, "")
		s.conns.ToClientMu.Unlock()
		return "client protocol violation: " + pe.Msg
	}
	if errors.Is(err, io.EOF) {
		return "client disconnected"
	}
	return "client read failed: " + err.Error()
}

// serverToClient forwards server messages, peeking at ReadyForQuery (the
// transaction status) and ParameterStatus; the messages of a special sync
// point go to the machine.
func (s *Session) serverToClient() string {
	var small [1]byte
	last := s.resume.lastServer
	if r := s.resume; len(r.toClient) > 0 || r.serverRemain > 0 {
		// What the event loop relayed and the client's socket did not
		// take, then the rest of a message it began to relay.
		s.conns.ToClientMu.Lock()
		s.conns.ToClient.Write(r.toClient)
		err := wire.CopyBody(s.conns.ToClient, s.conns.FromServer, r.serverRemain)
		if err == nil {
			err = s.conns.ToClient.Flush()
		}
		s.conns.ToClientMu.Unlock()
		if err != nil {
			if s.closing.Load() {
				return "closed"
			}
			return "relay failed: " + err.Error()
		}
	}
	for {
		typ, n, err := wire.ReadServerHeader(s.conns.FromServer)
		if err != nil {
			return s.serverGone(err, last)
		}
		last = typ
		s.bytesOut.Add(int64(n + 5))
		if special, err := s.m.OnServerMessage(typ, n); special {
			if err != nil {
				if s.closing.Load() {
					return "closed"
				}
				return "relay failed: " + err.Error()
			}
			continue
		}
		s.conns.ToClientMu.Lock()
		switch {
		case typ == wire.ServerReadyForQuery && n == 1:
			if _, err = io.ReadFull(s.conns.FromServer, small[:]); err == nil {
				s.m.OnReadyForQuery(small[0])
				wire.WriteMessage(s.conns.ToClient, typ, small[:])
			}
		case typ == wire.ServerParameterStatus && n <= enforce.MaxPeekedBody:
			var body []byte
			if body, err = wire.ReadBody(s.conns.FromServer, n, nil); err == nil {
				s.state.SetParameter(body)
				wire.WriteMessage(s.conns.ToClient, typ, body)
			}
		default:
			wire.WriteHeader(s.conns.ToClient, typ, n)
			err = wire.CopyBody(s.conns.ToClient, s.conns.FromServer, n)
		}
		if err == nil && s.conns.FromServer.Buffered() == 0 {
			err = s.conns.ToClient.Flush()
		}
		s.conns.ToClientMu.Unlock()
		if err != nil {
			if s.closing.Load() {
				return "closed"
			}
			return "client write failed: " + err.Error()
		}
		if typ == wire.ServerReadyForQuery && s.srv.draining() && s.idle() {
			s.terminate()
			return "pgguard shutting down"
		}
	}
}

// serverGone handles a server read error: the client learns that the server
// went away (unless the server said so itself with a FATAL, already relayed).
func (s *Session) serverGone(err error, lastType wire.ServerMsg) string {
	if s.closing.Load() {
		return "closed"
	}
	if lastType != wire.ServerErrorResponse {
		s.conns.ToClientMu.Lock()
		e := &wire.PGError{Severity: "FATAL", Code: "08006", Message: "pgguard: lost the connection to the server: " + err.Error()}
		if detail, hint, ok := s.m.CutOff(); ok {
			e.Detail, e.Hint = detail, hint
		}
		s.conns.ToClient.Write(e.Encode(nil, false))
		s.conns.ToClient.Flush()
		s.conns.ToClientMu.Unlock()
	}
	s.close()
	return "server closed the connection"
}

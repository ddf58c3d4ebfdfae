package proxy

import (
	"errors"
	"io"

	"github.com/pgguard/pgguard/internal/wire"
)

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
	}()
	reason := s.clientToServer()
	s.close()
	r2 := <-done
	s.syncs.drain()
	if reason == "closed" {
		reason = r2
	}
	return reason
}

// clientToServer forwards client messages. Everything is raw bytes; only the
// type byte is looked at, except Query and Parse, which the policy judges.
// Writes are batched: the writer is flushed only when the client has nothing
// more buffered, so a pipeline goes out in one write.
func (s *Session) clientToServer() string {
	for {
		typ, n, err := wire.ReadClientHeader(s.cr)
		if err != nil {
			return s.clientGone(err)
		}
		s.bytesIn.Add(int64(n + 5))
		switch typ {
		case wire.ClientQuery:
			if s.enforcing() {
				err = s.onQuery(n)
				break
			}
			s.onSync()
			err = s.forward(typ, n)
		case wire.ClientParse:
			if s.enforcing() {
				err = s.onParse(n)
				break
			}
			s.unsynced = true
			err = s.forward(typ, n)
		case wire.ClientSync, wire.ClientFunctionCall:
			s.onSync()
			err = s.forward(typ, n)
			if f := s.afterSync; err == nil && f != nil {
				s.afterSync = nil
				err = f()
			}
		case wire.ClientTerminate:
			if s.pending.Load() > 0 {
				// The server reads the Terminate only after the running
				// statement ends, which may take long: cancel it.
				s.cancelRunning()
			}
			s.swMu.Lock()
			wire.WriteMessage(s.sw, wire.ClientTerminate, nil)
			s.sw.Flush()
			s.swMu.Unlock()
			return "client terminated"
		case wire.ClientBind:
			if len(s.rewrittenStmts) > 0 || len(s.ledgerStmts) > 0 {
				err = s.onBind(n)
				break
			}
			s.unsynced = true
			err = s.forward(typ, n)
		case wire.ClientExecute, wire.ClientDescribe, wire.ClientClose:
			// Extended-protocol work that runs in the implicit transaction
			// ended by the next Sync.
			s.unsynced = true
			err = s.forward(typ, n)
		default: // COPY data and Flush
			err = s.forward(typ, n)
		}
		if err != nil {
			var pe *wire.ProtocolError
			switch {
			case errors.Is(err, errClientLeft):
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

// forward streams one client message of type typ and body length n to the
// server, flushing when the client has nothing more buffered.
func (s *Session) forward(typ wire.ClientMsg, n int) error {
	s.swMu.Lock()
	defer s.swMu.Unlock()
	wire.WriteHeader(s.sw, typ, n)
	err := wire.CopyBody(s.sw, s.cr, n)
	if err == nil && s.cr.Buffered() == 0 {
		err = s.sw.Flush()
	}
	return err
}

// sendMessage writes one message to the server like forward does: the
// flush waits until the client has nothing more buffered, so a Parse goes
// out together with the Bind, Execute and Sync behind it.
func (s *Session) sendMessage(typ wire.ClientMsg, body []byte) error {
	s.swMu.Lock()
	defer s.swMu.Unlock()
	wire.WriteMessage(s.sw, typ, body)
	if s.cr.Buffered() == 0 {
		return s.sw.Flush()
	}
	return nil
}

// send writes whole messages to the server and flushes.
func (s *Session) send(msgs ...[]byte) error {
	s.swMu.Lock()
	defer s.swMu.Unlock()
	for _, m := range msgs {
		s.sw.Write(m)
	}
	return s.sw.Flush()
}

// flushServer sends whatever the client-to-server loop has buffered. Every
// wait for the server's answer starts with it: the message waited for may
// still be in the buffer when the client pipelined several in one write.
func (s *Session) flushServer() error {
	s.swMu.Lock()
	defer s.swMu.Unlock()
	return s.sw.Flush()
}

// newSyncPoint counts a message that the server will answer with one
// ReadyForQuery and returns its sequence number.
func (s *Session) newSyncPoint() uint64 {
	s.sent++
	s.pending.Add(1)
	return s.sent
}

// clientGone handles a client read error: a client that vanished while a
// statement runs gets that statement cancelled, so that it does not go on
// holding locks on the server with nobody waiting for it.
func (s *Session) clientGone(err error) string {
	if s.closing.Load() {
		return "closed"
	}
	if s.pending.Load() > 0 {
		s.cancelRunning()
		return "client disconnected mid-statement; statement cancelled"
	}
	var pe *wire.ProtocolError
	if errors.As(err, &pe) {
		s.cwMu.Lock()
		wire.SendFatal(s.cw, wire.CodeProtocolViolation, "pgguard: "+pe.Msg, "")
		s.cwMu.Unlock()
		return "client protocol violation: " + pe.Msg
	}
	if errors.Is(err, io.EOF) {
		return "client disconnected"
	}
	return "client read failed: " + err.Error()
}

// serverToClient forwards server messages, peeking at ReadyForQuery (the
// transaction status) and ParameterStatus, and applying what the queued
// special sync points ask for.
func (s *Session) serverToClient() string {
	var small [1]byte
	var last wire.ServerMsg
	for {
		typ, n, err := wire.ReadServerHeader(s.sr)
		if err != nil {
			return s.serverGone(err, last)
		}
		last = typ
		s.bytesOut.Add(int64(n + 5))
		if sp := s.syncs.head(s.received + 1); sp != nil {
			if err := s.special(sp, typ, n); err != nil {
				if s.closing.Load() {
					return "closed"
				}
				return "relay failed: " + err.Error()
			}
			continue
		}
		s.cwMu.Lock()
		switch {
		case typ == wire.ServerReadyForQuery && n == 1:
			if _, err = io.ReadFull(s.sr, small[:]); err == nil {
				s.readyForQuery(small[0])
				wire.WriteMessage(s.cw, typ, small[:])
			}
		case typ == wire.ServerParameterStatus && n <= maxPeekedBody:
			var body []byte
			if body, err = wire.ReadBody(s.sr, n, nil); err == nil {
				s.state.SetParameter(body)
				wire.WriteMessage(s.cw, typ, body)
			}
		default:
			wire.WriteHeader(s.cw, typ, n)
			err = wire.CopyBody(s.cw, s.sr, n)
		}
		if err == nil && s.sr.Buffered() == 0 {
			err = s.cw.Flush()
		}
		s.cwMu.Unlock()
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

// readyForQuery records a ReadyForQuery: the sync point is answered.
func (s *Session) readyForQuery(status byte) {
	s.state.SetTxStatus(status)
	if status == 'I' {
		s.tx.Reset()
	}
	s.received++
	if s.pending.Add(-1) == 0 {
		select {
		case s.idleSignal <- struct{}{}:
		default:
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
		s.cwMu.Lock()
		e := &wire.PGError{Severity: "FATAL", Code: "08006", Message: "pgguard: lost the connection to the server: " + err.Error()}
		if index := s.buildingIndex.Load(); index != nil {
			e.Detail, e.Hint = buildCutOff(*index)
		}
		s.cw.Write(e.Encode(nil, false))
		s.cw.Flush()
		s.cwMu.Unlock()
	}
	s.close()
	return "server closed the connection"
}

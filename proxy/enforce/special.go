package enforce

import (
	"bytes"
	"encoding/binary"
	"io"
	"math/rand/v2"
	"time"

	"github.com/pgguard/pgguard/internal/wire"
	"github.com/pgguard/pgguard/policy"
)

// Bounds on what a special sync point reads whole or holds.
const (
	// MaxPeekedBody bounds the server messages read whole to look at
	// (ErrorResponse, CommandComplete, ParameterStatus), here and by the
	// relay. PostgreSQL's are far smaller; a longer one is streamed without
	// a look.
	MaxPeekedBody = 64 << 10
	// maxSwallowedRows bounds the rows kept of pgguard's own query; past it
	// the query counts as failed.
	maxSwallowedRows = 1 << 20
)

// special relays one server message that belongs to a special sync point.
// Every message gets exactly one of these treatments, whatever its type and
// size:
//
//   - ReadyForQuery ends the sync point (answered): the answer is released
//     or the statement retried, the outcome reported, and the ReadyForQuery
//     relayed unless pgguard sends it itself later (holdReady) or the query
//     was its own (swallow).
//   - ErrorResponse, CommandComplete and ParameterStatus are read whole to
//     learn the outcome, then delivered; an ErrorResponse raised by the
//     refusal marker is replaced by pgguard's own.
//   - A DataRow of pgguard's own query is kept (bounded).
//   - Everything else (rows, NOTICEs, COPY data, descriptions) is delivered
//     as it streams in, whatever its size.
//
// "Delivered" depends on the sync point's mode: discarded (swallow), kept
// within a bound while a retry is possible (hold), written to the client
// (stream). The sync point's notices go to the client before its first
// message. No message is written whose body was not read.
func (m *Machine) special(sp *syncPoint, typ wire.ServerMsg, n int) error {
	m.conns.ToClientMu.Lock()
	defer m.conns.ToClientMu.Unlock()
	sp.applyPending()
	if sp.mode != swallow && !sp.noticesSent {
		sp.noticesSent = true
		for _, msg := range sp.notices {
			m.conns.ToClient.Write(msg)
		}
	}
	var err error
	switch {
	case typ == wire.ServerReadyForQuery:
		if n != 1 {
			return &wire.ProtocolError{Msg: "invalid ReadyForQuery"}
		}
		var status [1]byte
		if _, err := io.ReadFull(m.conns.FromServer, status[:]); err != nil {
			return err
		}
		return m.answered(sp, status[0])
	case n <= MaxPeekedBody && (typ == wire.ServerErrorResponse || typ == wire.ServerCommandComplete || typ == wire.ServerParameterStatus):
		var body []byte
		if body, err = wire.ReadBody(m.conns.FromServer, n, nil); err != nil {
			return err
		}
		err = m.peeked(sp, typ, body)
	case typ == wire.ServerCloseComplete && sp.retry != nil && sp.retry.skip > 0:
		// The answer to the Close that a resent batch starts with.
		sp.retry.skip--
		_, err = m.conns.FromServer.Discard(n)
	case typ == wire.ServerDataRow && sp.mode == swallow:
		err = m.keepRow(sp, n)
	case typ == wire.ServerNotificationResponse && sp.mode == swallow:
		// A NOTIFY delivered while pgguard's own query ran is the
		// client's: it goes on at once, as it would have without the query.
		wire.WriteHeader(m.conns.ToClient, typ, n)
		err = wire.CopyBody(m.conns.ToClient, m.conns.FromServer, n)
	default:
		err = m.deliver(sp, typ, n, nil)
	}
	if err == nil && m.conns.FromServer.Buffered() == 0 {
		err = m.conns.ToClient.Flush()
	}
	return err
}

// peeked handles a message read whole: it records the outcome and delivers
// the message (or pgguard's error in place of the refusal marker's).
func (m *Machine) peeked(sp *syncPoint, typ wire.ServerMsg, body []byte) error {
	switch typ {
	case wire.ServerErrorResponse:
		code, msg := wire.ErrorFields(body)
		if sp.errCode == "" {
			sp.errCode, sp.errMsg = code, msg
		}
		switch {
		case sp.swap != nil && bytes.Contains(body, []byte(sp.marker)):
			sp.swapped = true
			body = sp.swap.Encode(nil, false)[5:]
		case sp.mode == swallow:
			// The server's message can quote a literal; only its code is logged.
			m.log.Warn("statement sent by pgguard failed", "sqlstate", code)
		default:
			body = m.withBuildCutOff(body)
		}
	case wire.ServerCommandComplete:
		if sp.tag == "" {
			tag, _, _ := wire.CString(body)
			sp.tag = commandTag(tag)
		}
	case wire.ServerParameterStatus:
		m.state.SetParameter(body)
		if sp.mode == swallow {
			// The client must learn of a reported setting even when
			// pgguard's own query changed it: it is the session's.
			wire.WriteMessage(m.conns.ToClient, typ, body)
			return nil
		}
		// Otherwise it keeps its place in the answer (held with it).
	}
	return m.deliver(sp, typ, len(body), body)
}

// keepRow keeps a DataRow of pgguard's own query, up to maxSwallowedRows.
func (m *Machine) keepRow(sp *syncPoint, n int) error {
	if sp.rowBytes+n > maxSwallowedRows {
		sp.rowsLost = true
		_, err := m.conns.FromServer.Discard(n)
		return err
	}
	body, err := wire.ReadBody(m.conns.FromServer, n, nil)
	if err != nil {
		return err
	}
	sp.rowBytes += n
	sp.rows = append(sp.rows, wire.DecodeDataRow(body))
	return nil
}

// deliver disposes of one message of a special sync point: body is the
// message's body when it was read whole, or nil when the n bytes are still
// in the server reader (then they are streamed).
func (m *Machine) deliver(sp *syncPoint, typ wire.ServerMsg, n int, body []byte) error {
	switch sp.mode {
	case swallow:
		if body == nil {
			_, err := m.conns.FromServer.Discard(n)
			return err
		}
		return nil
	case hold:
		if sp.retry.buf.Len()+5+n <= m.cfg.MaxHeldAnswer {
			if body == nil {
				var err error
				if body, err = wire.ReadBody(m.conns.FromServer, n, nil); err != nil {
					return err
				}
			}
			sp.retry.buf.Write(wire.Frame(typ, body))
			return nil
		}
		// Too much to hold: the client gets what was held and the rest as
		// it comes, and the statement is not retried.
		m.release(sp)
	}
	if body != nil {
		wire.WriteMessage(m.conns.ToClient, typ, body)
		return nil
	}
	wire.WriteHeader(m.conns.ToClient, typ, n)
	return wire.CopyBody(m.conns.ToClient, m.conns.FromServer, n)
}

// release sends the client the answer held for a retry and ends the hold:
// the sync point streams from now on, and is not retried.
func (m *Machine) release(sp *syncPoint) {
	if sp.mode != hold {
		return
	}
	sp.mode = stream
	m.conns.ToClient.Write(sp.retry.buf.Bytes())
	sp.retry.buf = bytes.Buffer{}
}

// answered ends a special sync point on its ReadyForQuery.
func (m *Machine) answered(sp *syncPoint, status byte) error {
	if sp.mode == hold && m.retryable(sp) {
		if again, err := m.resend(sp); again || err != nil {
			return err
		}
		// The look before the retry was refused: the client gets the
		// last try's answer.
	}
	m.release(sp)
	if sp.rowsLost && sp.errCode == "" {
		sp.errCode, sp.errMsg = "54000", "pgguard: the answer of its own query was too large"
	}
	if status != 'I' {
		m.tx.Apply(appliedEffects(sp.effects, sp.errCode == "")...)
	}
	m.syncs.pop()
	m.OnReadyForQuery(status)
	code := sp.errCode
	if sp.swapped {
		code = sp.swap.Code
	}
	for _, ev := range sp.events {
		m.report(ev, sp.tag, code)
	}
	if sp.mode != swallow && !sp.holdReady {
		wire.WriteMessage(m.conns.ToClient, wire.ServerReadyForQuery, []byte{status})
	}
	sp.finish(outcome{status: status, errCode: sp.errCode, errMsg: sp.errMsg, rows: sp.rows})
	if m.conns.FromServer.Buffered() == 0 {
		return m.conns.ToClient.Flush()
	}
	return nil
}

// appliedEffects is what of a sync point's effects the memory of the
// transaction takes: all of them when it succeeded. When it failed, the
// transaction is aborted until a ROLLBACK TO SAVEPOINT (or ends), and
// only savepoints matter; those at its start ran (a driver's automatic
// savepoint before its statement), and the rest is not known to have.
func appliedEffects(effects []policy.TxEffect, ok bool) []policy.TxEffect {
	if ok {
		return effects
	}
	n := 0
	for n < len(effects) && effects[n].Savepoint != nil && len(effects[n].Creates)+len(effects[n].Moves)+len(effects[n].Exclusive)+len(effects[n].NotValid) == 0 {
		n++
	}
	return effects[:n]
}

// commandTag drops the row counts from a CommandComplete tag
// ("INSERT 0 5" → "INSERT"), which would make metric labels unbounded.
func commandTag(tag string) string {
	end := len(tag)
	for end > 0 && (tag[end-1] == ' ' || (tag[end-1] >= '0' && tag[end-1] <= '9')) {
		end--
	}
	return tag[:end]
}

// retry is the state of a DDL statement that may be retried after a
// lock_timeout failure.
type retry struct {
	query []byte // the messages to send again: a Query, or a batch
	// closes counts the Closes that a resent batch starts with; skip,
	// those whose CloseComplete has not come back yet.
	closes, skip int
	attempt      int // retries done so far
	attempts     int // retries allowed
	initial      time.Duration
	max          time.Duration
	// buf holds the answer back until it is final (at most
	// Config.MaxHeldAnswer bytes).
	buf     bytes.Buffer
	onRetry func(attempt int, wait time.Duration)
	// look is the lock queue's question before each retry (retryLook),
	// lookMode the mode the statement takes; "" for none.
	look, lookMode string
}

// passAsync sends the client the asynchronous messages of a held answer
// that it will never see (the attempt failed and is retried): a NOTIFY
// delivered meanwhile and a ParameterStatus are the session's, whatever
// became of the statement, and they go in the order the server sent them.
// The attempt's own messages (its error, its NOTICEs) are dropped: the
// next attempt answers again.
func (m *Machine) passAsync(held []byte) {
	wrote := false
	defer func() {
		if wrote {
			// The backoff that follows must not keep them.
			m.conns.ToClient.Flush()
		}
	}()
	for len(held) >= 5 {
		n := int(binary.BigEndian.Uint32(held[1:5])) + 1
		if n < 5 || n > len(held) {
			return
		}
		switch wire.ServerMsg(held[0]) {
		case wire.ServerNotificationResponse, wire.ServerParameterStatus:
			m.conns.ToClient.Write(held[:n])
			wrote = true
		}
		held = held[n:]
	}
}

func (m *Machine) retryable(sp *syncPoint) bool {
	r := sp.retry
	return sp.errCode == "55P03" && r.attempt < r.attempts && !m.sess.Closing()
}

// resend waits a backoff with jitter, looks at the lock queue again as
// before the first try (retry.look: a session that held a lock on the
// table for long is still in the way, or has come since), waiting outside
// the queue up to lock_queue.deadline, and sends the statement again; its
// answer replaces the failed one, which the client never sees. It reports
// false when the way was still blocked at the deadline: the statement is
// not sent again, and the failed try's answer is the client's.
//
// It runs in the server-to-client loop, which holds Conns.ToClientMu and
// is the only reader of the server's messages: the look's question is
// read here (inlineQuery), while the client-to-server loop waits for the
// retries to be over and sends nothing.
func (m *Machine) resend(sp *syncPoint) (bool, error) {
	r := sp.retry
	r.attempt++
	d := r.initial << (r.attempt - 1)
	if d > r.max || d <= 0 {
		d = r.max
	}
	// Full jitter in [d/2, d]: sessions that failed together do not retry
	// together.
	d = d/2 + rand.N(d/2+1)
	// The failed try's asynchronous messages go now, not after the wait;
	// the rest is kept, the client's answer if no retry is sent.
	m.passAsync(r.buf.Bytes())
	held := withoutAsync(r.buf.Bytes())
	r.buf.Reset()
	r.buf.Write(held)
	m.conns.ToClientMu.Unlock()
	defer m.conns.ToClientMu.Lock()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-m.sess.Done():
		return true, errSessionClosed
	}
	if r.look != "" {
		deadline := time.Duration(m.cfg.Policy.Engine().Config().LockQueue.Deadline)
		if f := m.waitOutsideQueue(nil, func(sql string) (outcome, error) { return m.inClientEncoding(m.inlineQuery, sql) }, r.look, false, deadline,
			func(b blocker, waited, deadline time.Duration) *policy.Finding {
				return lockQueueRefusal(b, r.lookMode, waited, deadline)
			}); f != nil {
			m.log.Warn("lock_timeout: no retry: a session is still in the statement's way at lock_queue.deadline",
				"retry", r.attempt, "user", m.state.User, "database", m.state.Database)
			r.attempts = r.attempt - 1
			return false, nil
		}
		if m.sess.Closing() {
			return true, errSessionClosed
		}
	}
	if r.onRetry != nil {
		r.onRetry(r.attempt, d)
	}
	r.buf.Reset()
	r.skip = r.closes
	sp.errCode, sp.errMsg, sp.tag = "", "", ""
	// The try that failed ran nothing the retry's answer will not show.
	m.ltDone, m.ltFailed = 0, false
	return true, m.conns.send(r.query)
}

// withoutAsync returns held without its NotificationResponse and
// ParameterStatus messages (passAsync sent them).
func withoutAsync(held []byte) []byte {
	var out []byte
	for len(held) >= 5 {
		n := int(binary.BigEndian.Uint32(held[1:5])) + 1
		if n < 5 || n > len(held) {
			return append(out, held...)
		}
		switch wire.ServerMsg(held[0]) {
		case wire.ServerNotificationResponse, wire.ServerParameterStatus:
		default:
			out = append(out, held[:n]...)
		}
		held = held[n:]
	}
	return append(out, held...)
}

// inlineQuery runs a query of pgguard's own on the session's connection
// from the server-to-client loop, while nothing else is in flight (a
// retry's look), and reads its answer itself: its rows, its error's code.
// A NOTIFY or ParameterStatus that comes meanwhile is the client's and
// goes on; a NOTICE is the query's own and is dropped. The caller does not
// hold Conns.ToClientMu.
func (m *Machine) inlineQuery(sql string) (outcome, error) {
	var out outcome
	if err := m.conns.send(internalMessages(sql)); err != nil {
		return out, err
	}
	for {
		typ, n, err := wire.ReadServerHeader(m.conns.FromServer)
		if err != nil {
			return out, err
		}
		m.acct.server(typ)
		body, err := wire.ReadBody(m.conns.FromServer, n, nil)
		if err != nil {
			return out, err
		}
		switch typ {
		case wire.ServerDataRow:
			out.rows = append(out.rows, wire.DecodeDataRow(body))
		case wire.ServerErrorResponse:
			if out.errCode == "" {
				out.errCode, out.errMsg = wire.ErrorFields(body)
				m.log.Warn("statement sent by pgguard failed", "sqlstate", out.errCode)
			}
		case wire.ServerParameterStatus, wire.ServerNotificationResponse:
			if typ == wire.ServerParameterStatus {
				m.state.SetParameter(body)
			}
			m.conns.ToClientMu.Lock()
			wire.WriteMessage(m.conns.ToClient, typ, body)
			err = m.conns.ToClient.Flush()
			m.conns.ToClientMu.Unlock()
			if err != nil {
				return out, err
			}
		case wire.ServerReadyForQuery:
			if len(body) == 1 {
				out.status = body[0]
			}
			return out, nil
		}
	}
}

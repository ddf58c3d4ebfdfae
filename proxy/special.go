package proxy

import (
	"bytes"
	"encoding/binary"
	"io"
	"math/rand/v2"
	"time"
)

// Bounds on what a special sync point reads whole or holds. PostgreSQL's
// ErrorResponse, CommandComplete, ParameterStatus and ReadyForQuery are far
// smaller than maxPeekedBody; a longer one is streamed without a look.
const (
	maxPeekedBody = 64 << 10
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
// "Delivered" depends on the sync point's mode: discarded for pgguard's own
// query, held (bounded) while a retry is possible, written to the client
// otherwise. The sync point's notices go to the client before its first
// message. No message is written whose body was not read.
func (s *Session) special(sp *syncPoint, typ serverMsg, n int) error {
	s.cwMu.Lock()
	defer s.cwMu.Unlock()
	if !sp.swallow && !sp.noticesSent {
		sp.noticesSent = true
		for _, m := range sp.notices {
			s.cw.Write(m)
		}
	}
	var err error
	switch {
	case typ == serverReadyForQuery:
		if n != 1 {
			return &protocolError{"invalid ReadyForQuery"}
		}
		var status [1]byte
		if _, err := io.ReadFull(s.sr, status[:]); err != nil {
			return err
		}
		return s.answered(sp, status[0])
	case n <= maxPeekedBody && (typ == serverErrorResponse || typ == serverCommandComplete || typ == serverParameterStatus):
		var body []byte
		if body, err = readBody(s.sr, n, nil); err != nil {
			return err
		}
		err = s.peeked(sp, typ, body)
	case typ == serverDataRow && sp.swallow:
		err = s.keepRow(sp, n)
	default:
		err = s.deliver(sp, typ, n, nil)
	}
	if err == nil && s.sr.Buffered() == 0 {
		err = s.cw.Flush()
	}
	return err
}

// peeked handles a message read whole: it records the outcome and delivers
// the message (or pgguard's error in place of the refusal marker's).
func (s *Session) peeked(sp *syncPoint, typ serverMsg, body []byte) error {
	switch typ {
	case serverErrorResponse:
		code, msg := errorFields(body)
		if sp.errCode == "" {
			sp.errCode, sp.errMsg = code, msg
		}
		switch {
		case sp.swap != nil && bytes.Contains(body, []byte(sp.marker)):
			sp.swapped = true
			body = sp.swap.encode(nil, false)[5:]
		case sp.swallow:
			// The server's message can quote a literal; only its code is logged.
			s.log.Warn("statement sent by pgguard failed", "sqlstate", code)
		default:
			body = s.withBuildCutOff(body)
		}
	case serverCommandComplete:
		if sp.tag == "" {
			tag, _, _ := cstring(body)
			sp.tag = commandTag(tag)
		}
	case serverParameterStatus:
		s.state.setParameter(body)
		// The client must learn of a reported setting even when pgguard's
		// own query changed it: it is the session's.
		writeMessage(s.cw, typ, body)
		return nil
	}
	return s.deliver(sp, typ, len(body), body)
}

// keepRow keeps a DataRow of pgguard's own query, up to maxSwallowedRows.
func (s *Session) keepRow(sp *syncPoint, n int) error {
	if sp.rowBytes+n > maxSwallowedRows {
		sp.rowsLost = true
		_, err := s.sr.Discard(n)
		return err
	}
	body, err := readBody(s.sr, n, nil)
	if err != nil {
		return err
	}
	sp.rowBytes += n
	sp.rows = append(sp.rows, dataRow(body))
	return nil
}

// deliver disposes of one message of a special sync point: body is the
// message's body when it was read whole, or nil when the n bytes are still
// in the server reader (then they are streamed).
func (s *Session) deliver(sp *syncPoint, typ serverMsg, n int, body []byte) error {
	switch {
	case sp.swallow:
		if body == nil {
			_, err := s.sr.Discard(n)
			return err
		}
		return nil
	case sp.holding():
		if sp.retry.buf.Len()+5+n <= s.srv.cfg.Limits.MaxHeldAnswer {
			if body == nil {
				var err error
				if body, err = readBody(s.sr, n, nil); err != nil {
					return err
				}
			}
			sp.retry.buf.Write(frame(typ, body))
			return nil
		}
		// Too much to hold: the client gets what was held and the rest as
		// it comes, and the statement is not retried.
		s.release(sp)
	}
	if body != nil {
		writeMessage(s.cw, typ, body)
		return nil
	}
	writeHeader(s.cw, typ, n)
	return copyBody(s.cw, s.sr, n)
}

// release sends the client the answer held for a retry and ends the hold.
func (s *Session) release(sp *syncPoint) {
	r := sp.retry
	if r == nil || r.released {
		return
	}
	r.released = true
	s.cw.Write(r.buf.Bytes())
	r.buf = bytes.Buffer{}
}

// answered ends a special sync point on its ReadyForQuery.
func (s *Session) answered(sp *syncPoint, status byte) error {
	if sp.holding() && s.retryable(sp) {
		return s.resend(sp)
	}
	s.release(sp)
	if sp.rowsLost && sp.errCode == "" {
		sp.errCode, sp.errMsg = "54000", "pgguard: the answer of its own query was too large"
	}
	if sp.errCode == "" && status != 'I' {
		s.tx.addTables(sp.creates)
		s.tx.addNotValid(sp.notValid)
	}
	s.syncs.pop()
	s.readyForQuery(status)
	code := sp.errCode
	if sp.swapped {
		code = sp.swap.Code
	}
	for _, ev := range sp.events {
		s.report(ev, sp.tag, code)
	}
	if !sp.swallow && !sp.holdReady {
		writeMessage(s.cw, serverReadyForQuery, []byte{status})
	}
	sp.finish(outcome{status: status, errCode: sp.errCode, errMsg: sp.errMsg, rows: sp.rows})
	if s.sr.Buffered() == 0 {
		return s.cw.Flush()
	}
	return nil
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

// frame returns a whole message.
func frame[T clientMsg | serverMsg](typ T, body []byte) []byte {
	b := make([]byte, 5, 5+len(body))
	b[0] = byte(typ)
	binary.BigEndian.PutUint32(b[1:], uint32(len(body)+4))
	return append(b, body...)
}

// errorFields returns the SQLSTATE and message of an ErrorResponse body.
func errorFields(body []byte) (code, msg string) {
	for len(body) > 1 {
		f := body[0]
		v, rest, ok := cstring(body[1:])
		if !ok {
			break
		}
		switch f {
		case 'C':
			code = v
		case 'M':
			msg = v
		}
		body = rest
	}
	return code, msg
}

// dataRow decodes a DataRow into text columns (nil for NULL).
func dataRow(body []byte) []*string {
	if len(body) < 2 {
		return nil
	}
	n := int(binary.BigEndian.Uint16(body))
	body = body[2:]
	row := make([]*string, 0, n)
	for i := 0; i < n && len(body) >= 4; i++ {
		l := int32(binary.BigEndian.Uint32(body))
		body = body[4:]
		if l < 0 || int(l) > len(body) {
			row = append(row, nil)
			continue
		}
		v := string(body[:l])
		row = append(row, &v)
		body = body[l:]
	}
	return row
}

// retry is the state of a DDL statement that may be retried after a
// lock_timeout failure.
type retry struct {
	query    []byte // the Query message to send again
	attempt  int    // retries done so far
	attempts int    // retries allowed
	initial  time.Duration
	max      time.Duration
	// buf holds the answer back until it is final (at most
	// Limits.MaxHeldAnswer bytes). released: the answer was too large to hold, went to the
	// client, and the statement is not retried.
	buf      bytes.Buffer
	released bool
	onRetry  func(attempt int, wait time.Duration)
}

func (s *Session) retryable(sp *syncPoint) bool {
	r := sp.retry
	return sp.errCode == "55P03" && r.attempt < r.attempts && !s.closing.Load()
}

// resend waits a backoff with jitter and sends the statement again; its
// answer replaces the failed one, which the client never sees.
func (s *Session) resend(sp *syncPoint) error {
	r := sp.retry
	r.attempt++
	d := r.initial << (r.attempt - 1)
	if d > r.max || d <= 0 {
		d = r.max
	}
	// Full jitter in [d/2, d]: sessions that failed together do not retry
	// together.
	d = d/2 + rand.N(d/2+1)
	if r.onRetry != nil {
		r.onRetry(r.attempt, d)
	}
	r.buf.Reset()
	sp.errCode, sp.errMsg, sp.tag = "", "", ""
	s.cwMu.Unlock()
	defer s.cwMu.Lock()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-s.closed:
		return errSessionClosed
	}
	return s.send(r.query)
}

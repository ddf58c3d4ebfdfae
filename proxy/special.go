package proxy

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"time"
)

// special relays one server message that belongs to a special sync point.
// These are rare (DDL, rejections, pgguard's own queries), so this path
// reads whole messages and takes its time; the hot path never comes here.
func (s *Session) special(sp *syncPoint, typ byte, n int) error {
	// Bodies that pgguard must read, or hold back, are read whole; the rest
	// (say, the rows of a large SELECT INTO) stream through.
	whole := sp.swallow || sp.retry != nil || typ == msgErrorResponse || typ == msgReadyForQuery ||
		typ == msgParameterStatus || typ == msgCommandComplete
	var body []byte
	if whole {
		if n > 64<<20 && (sp.swallow || sp.retry != nil) {
			return &protocolError{fmt.Sprintf("server message of %d bytes in a statement pgguard holds back", n)}
		}
		var err error
		if body, err = readBody(s.sr, n, nil); err != nil {
			return err
		}
	}
	s.cwMu.Lock()
	defer s.cwMu.Unlock()
	if !sp.swallow && !sp.noticesSent {
		sp.noticesSent = true
		for _, m := range sp.notices {
			s.cw.Write(m)
		}
	}
	out := s.cw.Write
	if sp.retry != nil {
		out = sp.retry.buf.Write
	}
	switch typ {
	case msgErrorResponse:
		code, msg := errorFields(body)
		if sp.errCode == "" {
			sp.errCode, sp.errMsg = code, msg
		}
		switch {
		case sp.swap != nil && bytes.Contains(body, []byte(sp.marker)):
			sp.swapped = true
			out(sp.swap.encode(nil, false))
		case sp.swallow:
			s.log.Warn("statement sent by pgguard failed", "sqlstate", code, "message", msg)
		default:
			out(frame(typ, body))
		}
	case msgReadyForQuery:
		if len(body) != 1 {
			return &protocolError{"invalid ReadyForQuery"}
		}
		status := body[0]
		if sp.retry != nil && s.retryable(sp) {
			return s.resend(sp)
		}
		if sp.retry != nil {
			s.cw.Write(sp.retry.buf.Bytes())
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
			writeMessage(s.cw, typ, body)
		}
		if sp.done != nil {
			sp.done <- outcome{status: status, errCode: sp.errCode, errMsg: sp.errMsg, rows: sp.rows}
		}
	case msgParameterStatus:
		s.state.setParameter(body)
		out(frame(typ, body))
	case msgCommandComplete:
		if sp.tag == "" {
			tag, _, _ := cstring(body)
			sp.tag = commandTag(tag)
		}
		if !sp.swallow {
			out(frame(typ, body))
		}
	case 'D':
		if sp.swallow {
			sp.rows = append(sp.rows, dataRow(body))
		} else {
			out(frame(typ, body))
		}
	default:
		switch {
		case sp.swallow:
			if body == nil {
				if _, err := s.sr.Discard(n); err != nil {
					return err
				}
			}
		case body != nil:
			out(frame(typ, body))
		default:
			writeHeader(s.cw, typ, n)
			if err := copyBody(s.cw, s.sr, n); err != nil {
				return err
			}
		}
	}
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
func frame(typ byte, body []byte) []byte {
	b := make([]byte, 5, 5+len(body))
	b[0] = typ
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
	buf      bytes.Buffer // the answer, held back until it is final
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
	sp.errCode, sp.errMsg = "", ""
	s.cwMu.Unlock()
	time.Sleep(d)
	err := s.send(r.query)
	s.cwMu.Lock()
	return err
}

package proxy

import (
	"context"
	"encoding/binary"

	"github.com/pgguard/pgguard/policy"
)

// onParse judges the statement of an extended-protocol Parse. A refused
// statement's Parse carries the refusal marker instead, so the server fails
// it right there and, as after any error, skips everything up to Sync and
// answers the Sync alone.
func (s *Session) onParse(n int) error {
	body, err := s.readInspected(n)
	if err != nil {
		return err
	}
	nameBytes, rest, ok := cstringBytes(body)
	if !ok {
		return &protocolError{"invalid Parse message: statement name not terminated"}
	}
	queryBytes, params, ok := cstringBytes(rest)
	if !ok {
		return &protocolError{"invalid Parse message: query not terminated"}
	}
	if s.lifted != nil {
		if err := s.onBatchMessage(clientParse); err != nil {
			return err
		}
	}
	eng := s.srv.cfg.Policy.Engine()
	if _, plain := eng.Plain(bytesView(queryBytes)); plain {
		// Application traffic: nothing to judge, nothing allocated.
		s.unsynced = true
		s.srv.hooks().StatementsInspected(s.target.Name, 0, 1)
		return s.sendMessage(clientParse, body)
	}
	name, query := string(nameBytes), string(queryBytes)
	ctx := context.Background()
	alone := !s.unsynced && s.executesAhead() <= 1
	stmt := policy.Statement{Text: query, End: len(query), Line: 1}
	decide := func() []policy.StatementDecision {
		return []policy.StatementDecision{{Statement: stmt, Decision: eng.Decide(ctx, stmt, s.policyContext(alone))}}
	}
	ds := decide()
	if needsCare(ds) && s.pending.Load() > 0 {
		if !s.waitIdle() {
			return nil
		}
		ds = decide()
	}
	if !needsCare(ds) {
		s.unsynced = true
		s.srv.hooks().StatementsInspected(s.target.Name, 0, 1)
		return s.sendMessage(clientParse, body)
	}
	v := verdictOf(ds)
	events := []*StatementEvent{s.event(v, query)}
	if v.reject != nil {
		s.unsynced = true
		s.amend(s.batchPoint(), func(b *syncPoint) {
			if b.swap == nil {
				b.swap, b.marker = s.refusal(v), rejectMarker
			}
			b.events = append(b.events, events...)
		})
		return s.sendMessage(clientParse, parseBody(name, rejectMarker, nil))
	}
	if v.concurrent && alone && s.state.TxStatus() == 'I' {
		// The lift goes out before the Parse, as a sync point of its own;
		// the batch's answer is the statement's.
		b, err := s.beginConcurrent(v, events)
		if err != nil {
			return err
		}
		s.batch, s.lifted = b.sp, b
		s.afterSync = func() error { return s.endConcurrent(b, true) }
	} else {
		s.amend(s.batchPoint(), func(b *syncPoint) {
			b.notices = append(b.notices, v.notices...)
			b.creates = append(b.creates, v.creates...)
			b.notValid = append(b.notValid, v.notValid...)
			b.events = append(b.events, events...)
		})
	}
	s.unsynced = true
	if sql := v.sql(query); sql != query {
		return s.sendMessage(clientParse, parseBody(name, sql, params))
	}
	return s.sendMessage(clientParse, body)
}

// parseBody encodes a Parse body; params is the original parameter-type
// part (count and OIDs), or nil for none.
func parseBody(name, query string, params []byte) []byte {
	b := make([]byte, 0, len(name)+len(query)+2+len(params)+2)
	b = append(b, name...)
	b = append(b, 0)
	b = append(b, query...)
	b = append(b, 0)
	if len(params) < 2 {
		return append(b, 0, 0)
	}
	return append(b, params...)
}

// batchPoint returns the special sync point of the extended-protocol batch
// being received, queued from its first special message on.
func (s *Session) batchPoint() *syncPoint {
	if s.batch == nil {
		s.batch = s.nextSpecial()
	}
	return s.batch
}

// onSync counts a message the server answers with one ReadyForQuery
// (Query, Sync, FunctionCall) and ends the extended-protocol batch, whose
// special sync point, already queued, is this one. It runs before the
// message is sent.
func (s *Session) onSync() {
	s.newSyncPoint()
	s.batch, s.lifted, s.unsynced = nil, nil, false
}

// executesAhead counts the Execute messages already buffered from the
// client before the next Sync: a driver that pipelines BEGIN or a second
// statement with this one makes it not alone.
func (s *Session) executesAhead() int {
	buf, _ := s.cr.Peek(s.cr.Buffered())
	n := 0
	for len(buf) >= 5 {
		typ := buf[0]
		l := int(binary.BigEndian.Uint32(buf[1:5]))
		if clientMsg(typ) == clientSync || l < 4 {
			break
		}
		if clientMsg(typ) == clientExecute {
			n++
		}
		if l+1 > len(buf) {
			break
		}
		buf = buf[l+1:]
	}
	return n
}

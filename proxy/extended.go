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
	eng := s.srv.cfg.Policy.Engine()
	if _, plain := eng.Plain(bytesView(queryBytes)); plain {
		// Application traffic: nothing to judge, nothing allocated.
		s.unsynced = true
		s.srv.hooks().StatementsInspected(s.target.Name, 0, 1)
		return s.sendMessage(msgParse, body)
	}
	name, query := string(nameBytes), string(queryBytes)
	unsyncedBefore := s.unsynced
	ctx := context.Background()
	alone := !unsyncedBefore && s.executesAhead() <= 1
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
	s.unsynced = true
	if !needsCare(ds) {
		s.srv.hooks().StatementsInspected(s.target.Name, 0, 1)
		return s.sendMessage(msgParse, body)
	}
	v := verdictOf(ds)
	b := s.batchPoint()
	b.events = append(b.events, s.event(v, query))
	if v.reject != nil {
		if s.batch == nil || s.batch.swap == nil {
			b := s.batchPoint()
			b.swap, b.marker = s.refusal(v), rejectMarker
		}
		return s.sendMessage(msgParse, parseBody(name, rejectMarker, nil))
	}
	sql := v.sql(query)
	if v.concurrent && alone && s.state.TxStatus() == 'I' {
		// The lift goes out before the Parse, as a sync point of its own.
		s.unsynced = false
		sp, finish, err := s.beginConcurrent(v)
		s.unsynced = true
		if err != nil {
			return err
		}
		b := s.batchPoint()
		b.notices, b.done, b.creates = sp.notices, sp.done, sp.creates
		s.afterSync = finish
	} else if v.notices != nil || v.creates != nil || v.notValid != nil {
		b := s.batchPoint()
		b.notices = append(b.notices, v.notices...)
		b.creates = append(b.creates, v.creates...)
		b.notValid = append(b.notValid, v.notValid...)
	}
	if sql == query {
		return s.sendMessage(msgParse, body)
	}
	return s.sendMessage(msgParse, parseBody(name, sql, params))
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
// being received; it is queued when its Sync arrives.
func (s *Session) batchPoint() *syncPoint {
	if s.batch == nil {
		s.batch = &syncPoint{}
	}
	return s.batch
}

// onSync counts a Sync (or FunctionCall) and queues the batch's special
// sync point, if the batch has one. It runs before the message is sent.
func (s *Session) onSync() {
	seq := s.newSyncPoint()
	if s.batch != nil {
		s.batch.seq = seq
		s.syncs.push(s.batch)
		s.batch = nil
	}
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
		if typ == msgSync || l < 4 {
			break
		}
		if typ == 'E' {
			n++
		}
		if l+1 > len(buf) {
			break
		}
		buf = buf[l+1:]
	}
	return n
}

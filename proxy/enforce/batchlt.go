package enforce

import (
	"context"
	"encoding/binary"

	"github.com/pgguard/pgguard/internal/wire"
	"github.com/pgguard/pgguard/policy"
	"github.com/pgguard/pgguard/policy/sqltext"
)

// lock_timeout in an extended-protocol batch. Once the batch's first
// message is sent, pgguard cannot ask the server anything before a later
// statement of it (its questions end with a Sync, which would end the
// client's batch), so a statement that blocks writes behind others in the
// batch ([Parse/Bind/Execute SELECT 1, Parse/Bind/Execute ALTER ...,
// Sync], as pgx's exec mode and pgjdbc's executeBatch send it) would run
// with the session's own lock_timeout, and wait with no limit. A batch is
// given the treatment of a multi-statement Query instead: when its first
// Parse arrives, the later Parses the client has already written (the read
// buffer holds the batch up to its Sync in the usual driver case) are
// looked at, and when one blocks writes, checkLockTimeout runs for the
// batch before its first message is sent, and the session's value is put
// back after the batch's Sync (endImposed). A statement whose Parse has not
// arrived when the batch's first one is read (a client that flushes each
// statement and waits) stays as it was: its session's own lock_timeout.

// imposeAhead runs checkLockTimeout for the batch whose first Parse, of
// statement name with text first, is being read, when a later
// Parse of the batch already in the read buffer is a statement that blocks
// writes. It reports false when the session ended while it waited.
func (m *Machine) imposeAhead(eng *policy.Engine, name, first string) (bool, error) {
	if m.unsynced || m.batch != nil || m.acct.maySkip() {
		return true, nil
	}
	if eng.Config().LockTimeout <= 0 {
		return true, nil
	}
	// checkLockTimeout does nothing in mode warn or audit.
	ds, blocks := m.batchAhead(eng, name, first)
	if !blocks {
		return true, nil
	}
	if m.pending.Load() > 0 && !m.waitIdle() {
		return false, nil
	}
	v := &verdict{decisions: ds}
	if err := m.checkLockTimeout(v, ds); err != nil {
		return true, err
	}
	if v.restore == "" && len(v.notices) == 0 {
		return true, nil
	}
	b := m.batchPoint()
	m.amend(b, func(sp *syncPoint) {
		sp.notices = append(sp.notices, v.notices...)
		if v.restore != "" {
			// endImposed sends the ReadyForQuery after the restore.
			sp.holdReady = true
			if sp.done == nil {
				sp.done = make(chan struct{})
			}
		}
	})
	if v.restore != "" {
		m.afterSync = func() error { return m.endImposed(b, v, false) }
	}
	return true, nil
}

// batchAhead walks the batch the client has written so far, from the
// Parse being read (of statement name, with text first) to the batch's Sync, and returns its
// statements in order, each later one judged as its own Parse will be:
// behind other messages of its batch, in a transaction, with the catalog
// unknown (probeCatalog), and whether one of the later ones blocks writes.
// A Bind of a statement that no Parse of the batch prepared may run
// anything (a COMMIT, a ROLLBACK TO): it stands in the list as a statement
// that does not parse, so that checkLockTimeout's SET is not a SET LOCAL
// (sameLevelUpToWrites). Plain statements (application traffic) are not
// judged.
func (m *Machine) batchAhead(eng *policy.Engine, name, first string) (ds []policy.StatementDecision, blocks bool) {
	buffered := m.conns.FromClient.Buffered()
	if buffered < 5 {
		return nil, false
	}
	ctx := context.Background()
	backslash := m.state.BackslashQuote()
	parsed := map[string]bool{name: true}
	add := func(text string) {
		ds = append(ds, policy.StatementDecision{Statement: sqltext.Statement{Text: text, End: len(text), Line: 1}})
	}
	add(first)
	for off := 0; off+5 <= buffered; {
		b, err := m.conns.FromClient.Peek(off + 5)
		if err != nil {
			break
		}
		typ, l := wire.ClientMsg(b[off]), int(binary.BigEndian.Uint32(b[off+1:off+5]))
		if l < 4 || off+1+l > buffered || typ == wire.ClientSync {
			break
		}
		switch typ {
		case wire.ClientParse, wire.ClientBind:
			body, err := m.conns.FromClient.Peek(off + 1 + l)
			if err != nil {
				return ds, blocks
			}
			if typ == wire.ClientBind {
				_, rest, ok := wire.CStringBytes(body[off+5:])
				stmt, _, ok2 := wire.CStringBytes(rest)
				if ok && ok2 && !parsed[string(stmt)] {
					add(rejectMarker) // unknown: does not parse
				}
				break
			}
			name, query, ok := parseFields(body[off+5:])
			if !ok {
				return ds, blocks
			}
			text := wire.BytesView(query)
			parsed[string(name)] = true
			if _, plain := m.plainText(eng, text, backslash); plain {
				add(string(query))
				break
			}
			text = string(query)
			sc := m.policyContext(false)
			sc.Alone, sc.InTransaction = false, true
			sc.Catalog, sc.Unestimable = &probeCatalog{}, ""
			st := sqltext.Statement{Text: text, End: len(text), Line: 1}
			d := eng.Decide(ctx, st, sc)
			ds = append(ds, policy.StatementDecision{Statement: st, Decision: d})
			blocks = blocks || blocksWrites(d)
		}
		off += 1 + l
	}
	return ds, blocks
}

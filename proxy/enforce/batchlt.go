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
// Parse arrives (or its first Bind, while pgguard watches Binds), the rest
// of the batch the client has already written (the read buffer holds it up
// to its Sync in the usual driver case) is looked at, and when a Parse in
// it is of a statement that blocks writes, or a Bind binds one prepared
// before (blockerStmts: pgx prepares a batch's statements in a batch of
// their own, then binds them in the next), checkLockTimeout runs for the
// batch before its first message is sent, and the session's value is put
// back after the batch's Sync (endImposed). What has not arrived when the
// batch's first message is read (a client that flushes each statement and
// waits for its answer before sending the next) is not waited for: such a
// statement runs with the session's own lock_timeout.

// blockerStmt is a prepared statement that blocks writes, as judged when
// it was prepared.
type blockerStmt struct{ ds []policy.StatementDecision }

// maxBlockerStmts bounds Machine.blockerStmts; past it, a statement
// prepared is not remembered, and its Binds run with the session's own
// lock_timeout.
const maxBlockerStmts = 1024

// rememberBlocker notes that the prepared statement name, judged as ds and
// sent as it is, blocks writes, for a later batch that binds it.
func (m *Machine) rememberBlocker(name string, ds []policy.StatementDecision) {
	blocks := false
	for _, sd := range ds {
		blocks = blocks || blocksWrites(sd.Decision)
	}
	if !blocks || len(m.blockerStmts) >= maxBlockerStmts {
		return
	}
	if m.blockerStmts == nil {
		m.blockerStmts = make(map[string]*blockerStmt)
	}
	m.blockerStmts[name] = &blockerStmt{ds: ds}
}

// aheadBatch is what planAhead found in the batch being received.
type aheadBatch struct {
	// found: a statement of the batch other than its first message's own
	// blocks writes; ds, until imposeAhead has run, are its statements.
	found bool
	ds    []policy.StatementDecision
}

// planAhead looks at the batch whose first message, a Parse of statement
// name with text first (parse) or a Bind of statement name, is being read,
// from offset start of the read buffer on: when a statement of it other
// than the first message's own blocks writes (a Bind of a prepared one, or
// a later Parse of one), imposeAhead is to run before the first message is
// sent, once its own judgement is done (which may ask the catalog on the
// session's connection: the batch's sync point cannot be queued before
// that). It waits for earlier sync points to be answered first, and
// reports false when the session ended while it waited.
func (m *Machine) planAhead(eng *policy.Engine, start int, name, first string, parse bool) bool {
	if m.unsynced || m.batch != nil || m.acct.maySkip() || eng.Config().LockTimeout <= 0 {
		return true
	}
	if !m.mayBlockAhead(eng, start, name, parse) {
		return true // application traffic: nothing allocated
	}
	// checkLockTimeout does nothing in mode warn or audit.
	ds, blocks := m.batchAhead(eng, start, name, first, parse)
	if !blocks {
		return true
	}
	m.ahead = aheadBatch{found: true, ds: ds}
	return m.pending.Load() == 0 || m.waitIdle()
}

// imposeAhead runs checkLockTimeout for the batch planAhead found a
// statement that blocks writes in, and has the session's value put back
// after the batch's Sync (endImposed). Its callers call it right before
// the batch's first message is sent, or anything of the batch is queued.
func (m *Machine) imposeAhead() error {
	ds := m.ahead.ds
	if ds == nil {
		return nil
	}
	m.ahead.ds = nil
	v := &verdict{decisions: ds}
	if err := m.checkLockTimeout(v, ds); err != nil {
		return err
	}
	if v.restore == "" && len(v.notices) == 0 {
		return nil
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
	return nil
}

// mayBlockAhead reports whether the batch (see planAhead) holds a Parse
// that is not plain or a Bind of a remembered statement that blocks writes,
// which batchAhead then judges.
func (m *Machine) mayBlockAhead(eng *policy.Engine, start int, name string, parse bool) bool {
	if !parse && m.blockerStmts[name] != nil {
		return true
	}
	buffered := m.conns.FromClient.Buffered()
	for off := start; off+5 <= buffered; {
		b, err := m.conns.FromClient.Peek(off + 5)
		if err != nil {
			return false
		}
		typ, l := wire.ClientMsg(b[off]), int(binary.BigEndian.Uint32(b[off+1:off+5]))
		if l < 4 || off+1+l > buffered || typ == wire.ClientSync {
			return false
		}
		switch typ {
		case wire.ClientBind:
			if len(m.blockerStmts) == 0 {
				break
			}
			body, err := m.conns.FromClient.Peek(min(off+1+l, off+5+2*maxNameBytes))
			if err != nil {
				return false
			}
			_, rest, _ := wire.CStringBytes(body[off+5:])
			if stmt, _, ok := wire.CStringBytes(rest); ok && m.blockerStmts[string(stmt)] != nil {
				return true
			}
		case wire.ClientParse:
			body, err := m.conns.FromClient.Peek(off + 1 + l)
			if err != nil {
				return false
			}
			_, query, ok := parseFields(body[off+5:])
			if !ok {
				return false
			}
			if _, plain := m.plainText(eng, wire.BytesView(query), m.state.BackslashQuote()); !plain {
				return true
			}
		}
		off += 1 + l
	}
	return false
}

// batchAhead walks the batch the client has written so far, from its first
// message (see imposeAhead) to its Sync, and returns its statements in
// order, and whether one of them blocks writes, besides the first Parse,
// whose own judgement sees to it. A later Parse is judged as its own Parse
// will be: behind other messages of its batch, in a transaction, with the
// catalog unknown (probeCatalog); plain statements (application traffic)
// are not judged. A Bind of a statement that no Parse of the batch
// prepared is the statement remembered (blockerStmts), or may run anything
// else (a COMMIT, a ROLLBACK TO): it stands in the list as a statement that
// does not parse, so that checkLockTimeout's SET is not a SET LOCAL
// (sameLevelUpToWrites).
func (m *Machine) batchAhead(eng *policy.Engine, start int, name, first string, parse bool) (ds []policy.StatementDecision, blocks bool) {
	add := func(text string) {
		ds = append(ds, policy.StatementDecision{Statement: sqltext.Statement{Text: text, End: len(text), Line: 1}})
	}
	parsed := map[string]bool{}
	bound := func(stmt string) {
		if parsed[stmt] {
			return
		}
		if b := m.blockerStmts[stmt]; b != nil {
			ds, blocks = append(ds, b.ds...), true
			return
		}
		if _, tx := m.txStmts[stmt]; tx || m.txStmtsFull {
			add(rejectMarker) // unknown: does not parse
			return
		}
		// Application traffic (a driver's cached SELECT or UPDATE, a
		// statement of SQL PREPARE): it neither ends the block nor a
		// savepoint, so the SET may be a SET LOCAL (sameLevelUpToWrites),
		// as with its Parse in the batch.
		add("SELECT")
	}
	if parse {
		parsed[name] = true
		add(first)
	} else {
		bound(name)
	}
	buffered := m.conns.FromClient.Buffered()
	ctx := context.Background()
	backslash := m.state.BackslashQuote()
	for off := start; off+5 <= buffered; {
		b, err := m.conns.FromClient.Peek(off + 5)
		if err != nil {
			break
		}
		typ, l := wire.ClientMsg(b[off]), int(binary.BigEndian.Uint32(b[off+1:off+5]))
		if l < 4 || off+1+l > buffered || typ == wire.ClientSync {
			break
		}
		switch typ {
		case wire.ClientBind:
			// The names come first; a Bind's values may be long.
			body, err := m.conns.FromClient.Peek(min(off+1+l, off+5+2*maxNameBytes))
			if err != nil {
				return ds, blocks
			}
			_, rest, ok := wire.CStringBytes(body[off+5:])
			stmt, _, ok2 := wire.CStringBytes(rest)
			if !ok || !ok2 {
				add(rejectMarker)
				break
			}
			bound(string(stmt))
		case wire.ClientParse:
			body, err := m.conns.FromClient.Peek(off + 1 + l)
			if err != nil {
				return ds, blocks
			}
			name, query, ok := parseFields(body[off+5:])
			if !ok {
				return ds, blocks
			}
			parsed[string(name)] = true
			if _, plain := m.plainText(eng, wire.BytesView(query), backslash); plain {
				add(string(query))
				break
			}
			text := string(query)
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

// noteTxStmt remembers a Parse of statement name whose text may end the
// transaction block or a savepoint level (txStmts).
func (m *Machine) noteTxStmt(name []byte, text string) {
	if m.txStmtsFull || !txStmtText(text) {
		return
	}
	if _, ok := m.txStmts[string(name)]; ok {
		return
	}
	if len(m.txStmts) >= maxUserCodeStmts {
		m.txStmtsFull = true
		return
	}
	if m.txStmts == nil {
		m.txStmts = map[string]struct{}{}
	}
	m.txStmts[string(name)] = struct{}{}
}

// txStmtText reports whether a statement may end the transaction block or
// a savepoint level, as sameLevelUpToWrites counts (a transaction
// statement, DO, CALL), by its first word; a text whose first token is no
// word counts.
func txStmtText(text string) bool {
	t, _ := sqltext.FirstWord(text)
	if t.Kind != sqltext.TokWord {
		return true
	}
	for _, kw := range [...]string{"begin", "start", "commit", "end", "abort", "rollback", "savepoint", "release", "prepare", "do", "call"} {
		if t.WordIs(text, kw) {
			return true
		}
	}
	return false
}

// maxNameBytes is more than a portal's or a statement's name a Bind
// carries in practice; a longer one is taken as unknown.
const maxNameBytes = 1024

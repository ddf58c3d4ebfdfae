package enforce

import (
	"context"
	"encoding/binary"
	"github.com/pgguard/pgguard/policy/sqltext"
	"strings"

	"github.com/pgguard/pgguard/policy"

	"github.com/pgguard/pgguard/internal/wire"

	"github.com/pgguard/pgguard/internal/observe"
)

// OnParse judges the statement of an extended-protocol Parse. A refused
// statement's Parse carries the refusal marker instead, so the server fails
// it right there and, as after any error, skips everything up to Sync and
// answers the Sync alone. As for OnQuery, the n body bytes are still in
// Conns.FromClient.
func (m *Machine) OnParse(n int) error {
	body, err := m.readInspected(n)
	if err == errTooLong || err == errNoMemory {
		return m.refuseUnread(wire.ClientParse, n, err)
	}
	if err != nil {
		return err
	}
	defer m.dropInspected()
	nameBytes, rest, ok := wire.CStringBytes(body)
	var queryBytes, params []byte
	if ok {
		queryBytes, params, ok = wire.CStringBytes(rest)
	}
	if !ok {
		// The server fails it (ERROR 08P01), creates and replaces
		// nothing, and skips to the Sync, as after any error in a batch.
		m.unsynced = true
		return m.conns.sendMessage(wire.ClientParse, body)
	}
	if err := m.payRestore(); err != nil {
		return err
	}
	// A Parse replaces the unnamed statement; a named one must be new:
	// what it held comes back when the Parse fails (stmts.go).
	m.settle()
	u := m.beginParse(string(nameBytes))
	m.acct.setUndo(u)
	defer func() {
		u.endParse(m)
		m.acct.setUndo(nil)
	}()
	m.queryEffects(wire.BytesView(queryBytes), false)
	m.noteUserCodeStmt(nameBytes, wire.BytesView(queryBytes))
	m.noteTxStmt(nameBytes, wire.BytesView(queryBytes))
	m.noteDMLStmt(nameBytes, wire.BytesView(queryBytes))
	eng := m.cfg.Policy.Engine()
	if !m.unsynced && !m.lookAhead(eng, nameBytes, queryBytes) {
		return nil
	}
	if !m.unsynced {
		// A statement that blocks writes later in the batch gets the
		// lock_timeout now, before the batch's first message (batchlt.go).
		if !m.planAhead(eng, 0, string(nameBytes), string(queryBytes), true) {
			return nil
		}
	}
	raw := wire.BytesView(queryBytes)
	if settingSensitive(raw) && m.pending.Load() > 0 && !m.unsynced {
		// Reading.go: the batch's first message waits for earlier answers.
		if !m.waitIdle() {
			return nil
		}
	}
	rs, err := m.readings(raw, m.unsynced)
	if err != nil {
		return m.refuseMessage(wire.ClientParse, unreadable())
	}
	text := rs[0].text
	// Named, or a PREPARE: an EXECUTE later in the batch may run it.
	notePrepared(&m.batchPrepared, string(nameBytes), text)
	m.tools.Observe(text)
	m.noteLockTimeout(text, false)
	changes, advisory := policy.SessionEffects(text)
	advisory = advisory && m.liftsToolLocks()
	// While the transaction's memory holds anything, every statement is
	// judged (policy.HoldsExclusive, Context.Remembers): no fast path.
	if _, plain := m.plainAll(eng, rs); plain && !advisory && !m.tx.Active() && !m.userCodeInTx(text) {
		// Application traffic: nothing to judge, nothing allocated.
		if err := m.imposeAhead(); err != nil {
			return err
		}
		m.batchChangesLockTimeout = m.batchChangesLockTimeout || changes
		if ev := m.ledgerParse(nameBytes, wire.BytesView(queryBytes)); ev != nil {
			m.amend(m.batchPoint(), func(b *syncPoint) { b.events = append(b.events, ev) })
		}
		m.unsynced = true
		m.obs.StatementsInspected(m.state.Target, 0, 1)
		return m.conns.sendMessage(wire.ClientParse, body)
	}
	name, query := string(nameBytes), strings.Clone(text)
	for i := range rs {
		rs[i].text = strings.Clone(rs[i].text)
	}
	ctx := context.Background()
	alone, executes, end, err := m.aloneInBatch()
	if err != nil {
		return err
	}
	if m.ahead.found || m.afterSync != nil {
		// planAhead found another statement in the batch (a Bind of a
		// prepared one, which aloneInBatch does not tell from its own):
		// nothing else may take the batch's Sync.
		alone = false
	}
	stmt := sqltext.Statement{Text: query, End: len(query), Line: 1}
	unreadableBind := ""
	if m.needsValues(eng, query) {
		if bind, ok := m.batchBind(name); ok {
			// Judged with the values its Bind binds (bound.go).
			for i := range rs {
				text, why := boundText(rs[i].text, params, bind)
				if why != "" {
					// Judged as it is: its size then depends on the
					// table's alone.
					unreadableBind = "its Bind cannot be read: " + why
					break
				}
				rs[i].text = text
			}

		} else {
			// Prepared on its own: its Bind is judged.
			if m.boundStmts == nil {
				m.boundStmts = make(map[string]boundStmt)
			}
			m.boundStmts[name] = boundStmt{query: query, params: append([]byte(nil), params...)}
		}
	}
	decide := func() []policy.StatementDecision {
		return strictest(rs, func(r reading) []policy.StatementDecision {
			sc := m.policyContext(alone)
			sc.BackslashQuote = r.backslashQuote
			if m.unsynced {
				// Judged ahead, before its batch reached the server (warm.go).
				sc.Catalog = m.warmCatalog(query)
				if sc.Catalog != nil {
					sc.Unestimable = ""
				}
			}
			if unreadableBind != "" {
				sc.Unestimable = unreadableBind
			}
			st := stmt
			st.Text, st.End = r.text, len(r.text)
			return []policy.StatementDecision{{Statement: st, Decision: eng.Decide(ctx, st, sc)}}
		})
	}
	ds := decide()
	if (needsCare(ds) || advisory || m.asksCatalog()) && m.judgedBusy {
		if !m.waitIdle() {
			return nil
		}
		ds = decide()
	}
	m.noteDDL(ds)
	if !needsCare(ds) && !(advisory && alone && m.liftable(false, true)) {
		if err := m.imposeAhead(); err != nil {
			return err
		}
		m.batchChangesLockTimeout = m.batchChangesLockTimeout || changes
		m.remember(m.batchPoint, ds) // a SAVEPOINT's effect on the transaction's memory
		// A ledger INSERT judged in full (the transaction holds an ACCESS
		// EXCLUSIVE lock) still records its migration.
		if ev := m.ledgerParse(nameBytes, query); ev != nil {
			m.amend(m.batchPoint(), func(b *syncPoint) { b.events = append(b.events, ev) })
		}
		m.unsynced = true
		m.obs.StatementsInspected(m.state.Target, 0, 1)
		return m.conns.sendMessage(wire.ClientParse, body)
	}
	v := m.verdictOf(ds)
	m.refuseForLocks(v, ds, executes > 0)
	if m.unsynced {
		// Looked for before the batch was sent (judgeAhead).
		m.warmLook(v, query)
	}
	if v.rewritten != "" && v.reject == nil {
		// The rewrite goes to the server in the client's encoding.
		if enc, ok := m.toClient(v.rewritten); ok {
			v.rewritten = enc
		} else {
			v.reject, v.rejects = unreadableFinding(), []policy.Finding{*unreadableFinding()}
		}
	}
	m.batchChangesLockTimeout = m.batchChangesLockTimeout || changes
	var events []*observe.StatementEvent
	if needsCare(ds) {
		events = []*observe.StatementEvent{m.event(v, query)}
	}
	if v.reject != nil {
		m.unsynced = true
		m.amend(m.batchPoint(), func(b *syncPoint) {
			if b.swap == nil {
				b.swap, b.marker = m.refusal(v), rejectMarker
			}
			b.events = append(b.events, events...)
		})
		return m.conns.sendMessage(wire.ClientParse, parseBody(name, rejectMarker, nil))
	}
	if err := m.imposeAhead(); err != nil {
		return err
	}
	m.rememberBlocker(name, ds)
	switch {
	case alone && executes == 0 && (advisory || v.concurrent && v.rewritten != ""):
		// Prepared now, run by a later Bind: the lift goes with that Bind.
		m.rememberRewritten(name, v)
		m.amend(m.batchPoint(), func(b *syncPoint) {
			b.notices = append(b.notices, v.notices...)
			b.events = append(b.events, events...)
		})
	case alone && m.liftable(v.concurrent, advisory):
		// The lift goes out before the Parse, as a sync point of its own;
		// the batch's answer is the statement's.
		b, err := m.beginConcurrent(v, events)
		if err != nil {
			return err
		}
		m.batch = b.sp
		m.afterSync = func() error {
			err := m.endConcurrent(b, true)
			if b.sp.out.errCode == "" && !b.sp.out.closed {
				// The server holds the statement as pgguard sent it: a
				// Bind of it in a later batch needs the same look as one
				// prepared alone (OnBind), or it runs CONCURRENTLY where
				// it cannot, or without the lift.
				m.rememberRewritten(name, v)
			}
			return err
		}
	default:
		if err := m.checkLockTimeout(v, ds); err != nil {
			return err
		}
		if sql := v.sql(query); sql != query {
			body = parseBody(name, sql, params)
		}
		// DDL alone in its batch, in autocommit: the whole batch is one
		// implicit transaction, which a lock_timeout failure rolls back, so
		// it may be sent again, as a Query is (OnQuery).
		var r *retry
		if alone && executes == 1 && v.ddl && !m.state.InTransaction() && len(ds) == 1 && ds[0].Decision.Retryable {
			if r = m.batchRetry(eng, name, body, end); r != nil {
				r.look, r.lookMode = m.retryLook(ds)
			}
		}
		b := m.batchPoint()
		m.attach(b, v, events, r)
		switch {
		case v.restore != "":
			// Also waits out the retries.
			m.afterSync = func() error { return m.endImposed(b, v, alone) }
		case r != nil:
			// Nothing else may reach the server until the retries are over.
			m.afterSync = func() error {
				if _, clientLeft := m.awaitOutcome(b, true); clientLeft {
					return ErrClientLeft
				}
				return nil
			}
		}
		m.unsynced = true
		return m.conns.sendMessage(wire.ClientParse, body)
	}
	m.unsynced = true
	if sql := v.sql(query); sql != query {
		return m.conns.sendMessage(wire.ClientParse, parseBody(name, sql, params))
	}
	return m.conns.sendMessage(wire.ClientParse, body)
}

// batchRetry returns the retry state for a DDL statement whose Parse (body
// as sent) is alone in its batch, which ends at end in the read buffer
// (aloneInBatch), or nil when retries are off or the batch cannot be sent
// again as it is. The statement is sent again with the rest of the batch;
// a named statement is closed first, since its first Parse may have
// succeeded, and that Close's answer is not the client's (retry.closes).
func (m *Machine) batchRetry(eng *policy.Engine, name string, body []byte, end int) *retry {
	rest, err := m.conns.FromClient.Peek(end)
	if err != nil {
		return nil
	}
	// Every Bind must bind this statement: the relay passes such a batch
	// on as it is, so the server gets the same bytes again.
	if frames(rest, func(typ wire.ClientMsg, body []byte) bool {
		if typ != wire.ClientBind {
			return true
		}
		_, tail, ok := wire.CStringBytes(body)
		stmt, _, ok2 := wire.CStringBytes(tail)
		return ok && ok2 && string(stmt) == name
	}) {
		return nil
	}
	var msg []byte
	closes := 0
	if name != "" {
		msg = wire.Frame(wire.ClientClose, append(append([]byte{'S'}, name...), 0))
		closes = 1
	}
	msg = append(msg, wire.Frame(wire.ClientParse, body)...)
	msg = append(msg, rest...)
	r := m.retryFor(eng, msg)
	if r != nil {
		r.closes = closes
	}
	return r
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
func (m *Machine) batchPoint() *syncPoint {
	if m.batch == nil {
		m.batch = m.nextSpecial()
	}
	return m.batch
}

// aloneInBatch reports whether the statement whose Parse was just read is
// alone in its extended-protocol batch: nothing came before it since the
// last Sync, and what follows up to the Sync is only its own Bind,
// Describe, Close and at most one Execute. It reads ahead, waiting for the
// client's next bytes when needed: a client sends Flush or Sync before it
// waits for answers, so the wait ends. A Flush (the client wants answers
// before its Sync, and what it sends next is unknown), anything else, or a
// batch longer than the read buffer makes the statement not alone.
// It also reports how many Executes the batch holds (0 or 1 when alone)
// and, when alone, where the batch ends in the read buffer: the Sync's
// last byte is at end-1.
func (m *Machine) aloneInBatch() (alone bool, executes, end int, err error) {
	if m.unsynced {
		return false, 0, 0, nil
	}
	for off := 0; ; {
		if off+5 > m.conns.FromClient.Size() {
			return false, executes, 0, nil
		}
		b, err := m.conns.FromClient.Peek(off + 5)
		if err != nil {
			return false, executes, 0, err
		}
		typ, l := wire.ClientMsg(b[off]), int(binary.BigEndian.Uint32(b[off+1:off+5]))
		switch typ {
		case wire.ClientSync:
			return executes <= 1, executes, off + 1 + l, nil
		case wire.ClientExecute:
			if executes++; executes > 1 {
				return false, executes, 0, nil
			}
		case wire.ClientBind, wire.ClientDescribe, wire.ClientClose:
		default:
			return false, executes, 0, nil
		}
		if l < 4 {
			return false, executes, 0, nil
		}
		off += 1 + l
	}
}

// OnBind judges the Bind of a prepared statement that pgguard rewrote to
// CONCURRENTLY, or that waits for an advisory lock, when it was prepared
// alone (Parse, Describe, Sync, as pgx, lib/pq and pgjdbc prepare). It runs now: alone in its batch and outside a
// transaction block, it gets the lock_timeout lift; anywhere else the
// server would fail it ("cannot run inside a transaction block"), so
// pgguard refuses it with the recipe instead. The relay calls it for every
// Bind while WatchesBinds reports true.
func (m *Machine) OnBind(n int) error {
	if !m.unsynced && len(m.blockerStmts) > 0 && m.cfg.Policy != nil {
		// A statement that blocks writes, prepared before, run in this
		// batch: the lock_timeout goes before its first message
		// (batchlt.go).
		m.settle()
		if _, stmt, ok := m.peekBindNames(n); ok {
			if !m.planAhead(m.cfg.Policy.Engine(), n, stmt, "", false) {
				return nil // the session ended while it waited
			}
			_, bound := m.boundStmts[stmt]
			_, dml := m.dmlStmts[stmt]
			dml = dml && m.tx.Active() && m.rewrittenStmts[stmt] == nil && n <= min(m.cfg.MaxStatementMessage, smallMessage)
			if !bound && !dml {
				// Else judgeBind (bindWithValues, bindTooLong, bindDML)
				// imposes it, once the catalog is asked.
				if err := m.imposeAhead(); err != nil {
					return err
				}
			}
		}
	}
	if n > min(m.cfg.MaxStatementMessage, smallMessage) {
		// Too long to look at (and to spend the statement memory on); a
		// prepared statement that pgguard rewrote takes no parameters
		// worth that much. A migration's prepared UPDATE or DELETE
		// (boundStmts) is judged without its values: 150,000 keys of an
		// = ANY($1) fill a Bind this long, and must not pass unjudged.
		if portal, stmt, ok := m.peekBindNames(n); ok {
			if bs, ok := m.boundStmts[stmt]; ok && m.rewrittenStmts[stmt] == nil {
				return m.bindTooLong(bs, portal, n)
			}
		}
		m.unsynced = true
		return m.conns.Forward(wire.ClientBind, n)
	}
	body, err := m.readInspected(n)
	if err != nil {
		return err
	}
	_, rest, ok := wire.CStringBytes(body)
	var stmt []byte
	if ok {
		stmt, _, ok = wire.CStringBytes(rest)
	}
	if !ok {
		// The server fails it (ERROR 08P01) and skips to the Sync.
		m.unsynced = true
		return m.conns.sendMessage(wire.ClientBind, body)
	}
	m.ledgerBind(stmt, body)
	m.bindUserCode(stmt)
	m.settle()
	v := m.rewrittenStmts[string(stmt)]
	if bs, ok := m.boundStmts[string(stmt)]; ok && v == nil {
		return m.bindWithValues(bs, body)
	}
	if q, ok := m.dmlStmts[string(stmt)]; ok && v == nil && m.tx.Active() {
		return m.bindDML(q, body)
	}
	if v == nil {
		m.unsynced = true
		return m.conns.sendMessage(wire.ClientBind, body)
	}
	alone, _, _, err := m.aloneInBatch()
	if err != nil {
		return err
	}
	alone = alone && !m.ahead.found && m.afterSync == nil // as in OnParse
	if alone && m.pending.Load() > 0 && !m.waitIdle() {
		return nil
	}
	// A prepared wait for an advisory lock (lib/pq prepares
	// pg_advisory_lock($1) this way) is not rewritten: it is lifted when
	// it runs alone, and runs as it is anywhere else.
	advisory := !v.concurrent
	var events []*observe.StatementEvent
	if !advisory {
		events = []*observe.StatementEvent{m.event(v, v.decisions[0].Statement.Text)}
	}
	if advisory && !(alone && m.liftable(false, true)) {
		m.unsynced = true
		return m.conns.sendMessage(wire.ClientBind, body)
	}
	if alone && m.liftable(v.concurrent, advisory) {
		b, err := m.beginConcurrent(v, events)
		if err != nil {
			return err
		}
		m.batch = b.sp
		m.afterSync = func() error { return m.endConcurrent(b, true) }
		m.unsynced = true
		return m.conns.sendMessage(wire.ClientBind, body)
	}
	m.unsynced = true
	m.amend(m.batchPoint(), func(b *syncPoint) {
		if b.swap == nil {
			b.swap, b.marker = m.forClient(preparedConcurrentRefusal(v)), rejectMarker
		}
		b.events = append(b.events, events...)
	})
	// A Bind of a statement that does not exist fails with the name in
	// the server's message: the marker.
	portal, _, _ := wire.CStringBytes(body)
	refused := append(append(append([]byte(nil), portal...), 0), rejectMarker...)
	return m.conns.sendMessage(wire.ClientBind, append(refused, 0, 0, 0, 0, 0, 0, 0))
}

// preparedConcurrentRefusal is the error for a prepared CONCURRENTLY
// rewrite bound where it cannot run.
func preparedConcurrentRefusal(v *verdict) *wire.PGError {
	rule := "create-index"
	for _, sd := range v.decisions {
		for _, f := range sd.Decision.Findings {
			if f.Action == policy.Rewrite {
				rule = f.RuleID // drop-index, reindex
			}
		}
	}
	return &wire.PGError{Severity: "ERROR", Code: wire.CodeInsufficientPrivilege,
		Message: "pgguard: " + rule + ": this prepared statement runs as CONCURRENTLY, which cannot run inside a transaction block or behind other statements of the same batch",
		Detail:  "pgguard rewrote the statement to " + v.rewritten + " when it was prepared; the plain form would block writes to the table for as long as it runs.",
		Hint:    "Run the statement on its own, outside a transaction block (in autocommit).",
	}
}

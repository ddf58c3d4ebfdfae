package enforce

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/pgguard/pgguard/policy"
	"github.com/pgguard/pgguard/policy/sqltext"

	"github.com/pgguard/pgguard/internal/wire"

	"github.com/pgguard/pgguard/internal/observe"
)

// rejectMarker is a token that is a syntax error wherever it stands. A
// refused statement is replaced by it, so the server itself fails the
// statement at the same point of the protocol, with its own rules for
// transaction blocks, implicit transactions and pipelines; the proxy then
// swaps the server's error for its own. The random part keeps a client from
// forging it.
var rejectMarker = func() string {
	b := make([]byte, 8)
	rand.Read(b)
	return "pgguard_refused_" + hex.EncodeToString(b)
}()

// behindBatch reports whether a message comes behind an extended-protocol
// batch that has had no Sync yet: inside it (unsynced), or behind a Query
// or FunctionCall sent in it, which ended the batch for pgguard but which
// the server skips if the batch failed (accounting.maySkip). Then nothing
// of pgguard's own may go out before it (its queries end with a Sync,
// which would end the server's skipping), and it is judged as part of the
// batch: not alone, in a transaction.
func (m *Machine) behindBatch() bool { return m.unsynced || m.acct.maySkip() }

// policyContext describes the session for the engine.
// The engine copies what it keeps, so one Context per session is reused;
// only the client-to-server loop calls this.
func (m *Machine) policyContext(alone bool) *policy.Context {
	// pending first, the status after: a ReadyForQuery sets the status
	// before it lowers pending, so with none pending the status read next
	// is current; a verdict judged while some were pending is judged again
	// once they are answered (judgedBusy).
	busy := m.pending.Load() > 0
	m.judgedBusy = busy
	sc := &m.pctx
	if sc.CreatedTables == nil {
		*sc = policy.Context{
			CreatedTables:       m.tx.Created,
			NotValidConstraints: m.tx.NotValidLock,
			Remembers:           m.tx.Active,
			User:                m.state.User,
			Database:            m.state.Database,
			Profile:             m.cfg.Profile,
		}
		// Rule large-dml refuses an UPDATE or DELETE of a table that an
		// earlier statement of the transaction locked ACCESS EXCLUSIVE, as
		// pgguard lint does; without this the proxy never knew of the lock.
		sc.ExclusiveTables = m.tx.Exclusive
	}
	// Profiles and the tool follow a SET application_name.
	sc.ApplicationName = m.state.CurrentApplicationName()
	sc.Tool = m.tool()
	sc.BackslashQuote = m.state.BackslashQuote()
	behind := m.behindBatch()
	sc.InTransaction = m.state.InTransaction() || behind
	sc.Alone = alone && !behind
	sc.ServerVersion, sc.TimeZone = m.state.versionAndTimeZone()
	sc.Catalog = nil
	sc.Unestimable = ""
	sc.BatchPrepared = nil
	if len(m.batchPrepared) > 0 || len(m.aheadPrepared) > 0 {
		sc.BatchPrepared = m.preparedInBatch
	}
	sc.Migration = m.migration(m.cfg.Policy.Engine())
	// The later statements of a batch see what its earlier ones will do.
	var batch uint64
	if m.unsynced && m.batch != nil {
		batch = m.batch.seq
	}
	sc.NamesMoved = m.tx.Batch(batch)
	m.probe.asked = false
	switch {
	case behind:
		// Behind other messages of its batch: the catalog cannot be asked
		// now (OnParse replays what was asked ahead, warm.go).
		sc.Unestimable = "it comes behind other messages of its extended-protocol batch"
	case busy:
		// The status is stale and the connection busy: the probe tells
		// whether the verdict needs the catalog; if so, the caller waits
		// for idle and judges again (asksCatalog).
		sc.Catalog = &m.probe
	case m.state.TxStatus() != 'E':
		sc.Catalog = m.sessionCatalog(&m.catalog)
	}
	return sc
}

// readInspected reads the body of a Query, Parse or Bind message whole.
// Memory grows with the bytes that arrive, not with the length the client
// declared; a small buffer is kept for the next message. A body longer
// than Config.MaxStatementMessage is skipped and errTooLong returned. A
// larger one is paid for from Config.Memory as it arrives; when the budget
// cannot hold it, the rest of it is skipped and errNoMemory returned. The
// caller calls dropInspected once it is done with the body.
func (m *Machine) readInspected(n int) ([]byte, error) {
	if n > m.cfg.MaxStatementMessage {
		return nil, m.skip(n, errTooLong)
	}
	mem := m.cfg.Memory
	if mem == nil || n <= smallMessage {
		body, err := wire.ReadGrowing(m.conns.FromClient, n, m.qbuf, nil)
		if cap(body) <= smallMessage {
			m.qbuf = body
		}
		return body, err
	}
	if !mem.fits(wire.GrowingPeak(n, m.conns.FromClient.Size())) {
		mem.refused.Add(1)
		return nil, m.skip(n, errNoMemory)
	}
	r := mem.reader(m.sess.Done())
	body, err := wire.ReadGrowing(m.conns.FromClient, n, nil, r)
	if err != nil {
		// Nothing keeps what was read: it is not sent, and the rest is
		// skipped as it arrives.
		got := len(body)
		body = nil
		r.finish()
		if err == errNoMemory {
			mem.refused.Add(1)
			return nil, m.skip(n-got, errNoMemory)
		}
		return nil, err
	}
	m.inspected = r
	return body, nil
}

// dropInspected gives back to Config.Memory the body that readInspected
// returned last, which nothing may use any longer.
func (m *Machine) dropInspected() {
	m.inspected.finish()
	m.inspected = nil
}

// skip discards the n body bytes of a message that is not read, and
// returns why.
func (m *Machine) skip(n int, why error) error {
	if _, err := m.conns.FromClient.Discard(n); err != nil {
		return err
	}
	return why
}

// errTooLong is a statement message over Config.MaxStatementMessage.
var errTooLong = errors.New("statement message too long")

// refuseUnread answers a Query or Parse that readInspected did not read
// (errTooLong, errNoMemory), as refuseMessage does.
func (m *Machine) refuseUnread(typ wire.ClientMsg, n int, why error) error {
	if why == errNoMemory {
		return m.refuseNoMemory(typ, n)
	}
	return m.refuseTooLong(typ, n)
}

// refuseTooLong answers a Query or Parse that was too long to judge: the
// server fails a refusal marker in its place, as for any refused statement,
// so the session goes on in step.
func (m *Machine) refuseTooLong(typ wire.ClientMsg, n int) error {
	return m.refuseMessage(typ, &wire.PGError{Severity: "ERROR", Code: "54000",
		Message: fmt.Sprintf("pgguard: statement message of %d bytes is longer than pgguard judges (%d)", n, m.cfg.MaxStatementMessage),
		Detail:  "pgguard reads each statement whole to judge it before it reaches the server; nothing of this one ran.",
		Hint:    "Split the statement (batch large INSERTs, or load data with COPY, which streams), or raise --max-statement-message.",
	})
}

// refuseNoMemory answers a Query or Parse that the statement memory budget
// could not hold, with PostgreSQL's own out-of-memory error, in step as
// refuseTooLong.
func (m *Machine) refuseNoMemory(typ wire.ClientMsg, n int) error {
	return m.refuseMessage(typ, &wire.PGError{Severity: "ERROR", Code: wire.CodeOutOfMemory,
		Message: "out of memory",
		Detail: fmt.Sprintf("pgguard: the statement messages being read by all sessions hold the memory pgguard allows them (%d bytes); "+
			"this one, of %d bytes, was not read whole, and nothing of it ran.", m.cfg.Memory.Limit(), n),
		Hint: "Try again later, split the statement (or load data with COPY, which streams), or raise --max-statement-memory.",
	})
}

// refuseMessage answers a Query or Parse that pgguard refuses before
// judging it: the server fails a refusal marker in its place, and the
// client gets e.
func (m *Machine) refuseMessage(typ wire.ClientMsg, e *wire.PGError) error {
	var sp *syncPoint
	if typ == wire.ClientParse {
		sp = m.batchPoint()
	} else {
		sp = m.nextSpecial()
	}
	m.amend(sp, func(sp *syncPoint) {
		if sp.swap == nil {
			sp.swap, sp.marker = e, rejectMarker
		}
	})
	if typ == wire.ClientQuery {
		m.OnSync()
		return m.conns.send(wire.Frame(wire.ClientQuery, queryBody(rejectMarker)))
	}
	m.unsynced = true
	return m.conns.sendMessage(wire.ClientParse, parseBody("", rejectMarker, nil))
}

// OnQuery judges a simple-protocol Query and sends the server what the
// decision says: the Query itself, its rewrite, or the refusal marker. The
// relay has read the message's header; its n body bytes are still in
// Conns.FromClient. OnQuery counts the sync point itself.
func (m *Machine) OnQuery(n int) error {
	body, err := m.readInspected(n)
	if err == errTooLong || err == errNoMemory {
		return m.refuseUnread(wire.ClientQuery, n, err)
	}
	if err != nil {
		return err
	}
	defer m.dropInspected()
	if bytes.IndexByte(body, 0) != len(body)-1 {
		// Not one NUL-terminated string: the server answers ERROR 08P01
		// and ReadyForQuery, runs nothing, and the session goes on.
		m.OnSync()
		return m.conns.sendMessage(wire.ClientQuery, body)
	}
	eng := m.cfg.Policy.Engine()
	if err := m.payRestore(); err != nil {
		return err
	}
	raw := wire.BytesView(body[:len(body)-1])
	if settingSensitive(raw) && m.pending.Load() > 0 && !m.unsynced {
		// An earlier Query may change how the server reads this one
		// (reading.go): judge it with the settings that answer brings.
		if !m.waitIdle() {
			return nil
		}
	}
	m.settle()
	rs, err := m.readings(raw, m.unsynced)
	if err != nil {
		return m.refuseMessage(wire.ClientQuery, unreadable())
	}
	text := rs[0].text
	m.queryEffects(text, true)
	m.tools.Observe(text)
	m.noteLockTimeout(text, true)
	advisory := m.liftsToolLocks() && policy.WaitsForToolLock(text)
	// While the transaction's memory holds anything, every statement is
	// judged (policy.HoldsExclusive, Context.Remembers): no fast path.
	if n, plain := m.plainAll(eng, rs); plain && !advisory && !m.tx.Active() && !m.userCodeInTx(text) {
		// Application traffic: nothing to judge, nothing allocated.
		m.obs.StatementsInspected(m.state.Target, 0, n)
		if ev := m.ledgerEvent(text); ev != nil {
			m.amend(m.nextSpecial(), func(sp *syncPoint) { sp.events = append(sp.events, ev) })
		}
		m.OnSync()
		return m.conns.sendMessage(wire.ClientQuery, body)
	}
	sql := strings.Clone(text)
	for i := range rs {
		rs[i].text = strings.Clone(rs[i].text)
	}
	ctx := context.Background()
	ds := m.decideQuery(ctx, eng, rs)
	if (needsCare(ds) || advisory || m.asksCatalog()) && m.judgedBusy {
		// Judge again once the statements before it are answered: the
		// transaction status is stale while they run, and the catalog
		// cannot be asked; the verdict must not depend on the timing.
		if !m.waitIdle() {
			return nil
		}
		ds = m.decideQuery(ctx, eng, rs)
	}
	m.noteDDL(ds)
	// Not behind an open batch (nor behind a Query or FunctionCall sent
	// in one): after an error in it the server skips this Query until the
	// Sync, so no answer may be waited for.
	idle := !m.state.InTransaction() && m.batch == nil && !m.behindBatch()
	if !needsCare(ds) {
		if advisory && m.batch == nil && !m.behindBatch() && m.liftable(false, true) && len(ds) == 1 {
			return m.runLifted(m.verdictOf(ds), nil, wire.Frame(wire.ClientQuery, body))
		}
		// The common case: nothing to do but count and pass it on.
		m.obs.StatementsInspected(m.state.Target, 0, len(ds))
		// One sync point for both, made only when needed.
		var sp *syncPoint
		point := func() *syncPoint {
			if sp == nil {
				sp = m.nextSpecial()
			}
			return sp
		}
		m.remember(point, ds)
		// A ledger INSERT judged in full (the transaction holds an ACCESS
		// EXCLUSIVE lock) still records its migration.
		if ev := m.ledgerEvent(sql); ev != nil {
			m.amend(point(), func(sp *syncPoint) { sp.events = append(sp.events, ev) })
		}
		m.OnSync()
		return m.conns.sendMessage(wire.ClientQuery, body)
	}
	v := m.verdictOf(ds)
	m.refuseForLocks(v, ds, true)
	events := []*observe.StatementEvent{m.event(v, sql)}
	if v.rewritten != "" && v.reject == nil {
		// The rewrite goes to the server in the client's encoding.
		if enc, ok := m.toClient(v.rewritten); ok {
			v.rewritten = enc
		} else {
			v.reject, v.rejects = unreadableFinding(), []policy.Finding{*unreadableFinding()}
		}
	}
	switch {
	case v.reject != nil:
		m.amend(m.nextSpecial(), func(sp *syncPoint) {
			if sp.swap == nil {
				sp.swap, sp.marker = m.refusal(v), rejectMarker
			}
			sp.events = append(sp.events, events...)
		})
		m.OnSync()
		return m.conns.send(wire.Frame(wire.ClientQuery, queryBody(rejectMarker)))
	case m.batch == nil && !m.behindBatch() && m.liftable(v.concurrent, advisory) && len(ds) == 1:
		msg := body
		if v.rewritten != "" {
			msg = queryBody(v.rewritten)
		}
		return m.runLifted(v, events, wire.Frame(wire.ClientQuery, msg))
	}
	msg := body
	if v.rewritten != "" {
		msg = queryBody(v.rewritten)
	}
	if err := m.checkLockTimeout(v, ds); err != nil {
		return err
	}
	var r *retry
	if v.ddl && idle && len(ds) == 1 && ds[0].Decision.Retryable {
		if r = m.retryFor(eng, wire.Frame(wire.ClientQuery, msg)); r != nil {
			r.look, r.lookMode = m.retryLook(ds)
		}
	}
	sp := m.nextSpecial()
	m.attach(sp, v, events, r)
	m.OnSync()
	if r == nil && v.restore == "" {
		return m.conns.sendMessage(wire.ClientQuery, msg)
	}
	if err := m.conns.send(wire.Frame(wire.ClientQuery, msg)); err != nil {
		return err
	}
	if v.restore != "" {
		return m.endImposed(sp, v, len(ds) == 1)
	}
	// Nothing else may reach the server until the retries are over.
	if _, clientLeft := m.awaitOutcome(sp, true); clientLeft {
		return ErrClientLeft
	}
	return nil
}

// attach gives a sync point what a statement it answers brings: the
// verdict's notices and what to remember on success, the statement's
// events, and, with r, the hold of a statement that may be retried.
func (m *Machine) attach(sp *syncPoint, v *verdict, events []*observe.StatementEvent, r *retry) {
	effects := m.effects(v.decisions)
	if sp == m.batch {
		m.tx.Expect(sp.seq, v.ddl, effects...)
	}
	m.amend(sp, func(sp *syncPoint) {
		sp.notices = append(sp.notices, v.notices...)
		sp.effects = append(sp.effects, effects...)
		sp.events = append(sp.events, events...)
		if r != nil {
			sp.mode, sp.retry, sp.done = hold, r, make(chan struct{})
		}
		if v.restore != "" {
			// endImposed sends the ReadyForQuery after the restore.
			sp.holdReady = true
			if sp.done == nil {
				sp.done = make(chan struct{})
			}
		}
	})
}

// remember gives the sync point that point returns (asked only when
// needed) what statements that need nothing else, a SAVEPOINT or RELEASE,
// do to the memory of the transaction; nothing when they do nothing to it,
// so that application traffic gets no special sync point.
func (m *Machine) remember(point func() *syncPoint, ds []policy.StatementDecision) {
	effects := m.effects(ds)
	if len(effects) == 0 {
		return
	}
	sp := point()
	if sp == m.batch {
		m.tx.Expect(sp.seq, false, effects...)
	}
	m.amend(sp, func(sp *syncPoint) { sp.effects = append(sp.effects, effects...) })
}

// effects lists what statements do to the memory of the transaction, in
// their order. In a transaction that has failed already, every statement
// fails until a ROLLBACK TO SAVEPOINT: what comes before one does nothing.
func (m *Machine) effects(ds []policy.StatementDecision) []policy.TxEffect {
	var out []policy.TxEffect
	aborted := m.state.TxStatus() == 'E'
	for i := range ds {
		e := ds[i].Decision.Effect()
		if aborted {
			if e.Savepoint == nil || e.Savepoint.Kind != policy.SavepointRollback {
				continue
			}
			aborted = false
		}
		if !e.Empty() {
			out = append(out, e)
		}
	}
	return out
}

// nextSpecial returns the special sync point of the next sync message
// (Query, Sync, FunctionCall): the open extended-protocol batch's, or a new
// one, which the first amend queues, before anything of its statement is
// sent, so that the server-to-client loop treats every message of its
// answer, even those that come before the sync message is sent (after a
// Flush); change it only through amend.
func (m *Machine) nextSpecial() *syncPoint {
	if m.batch != nil {
		return m.batch
	}
	return &syncPoint{seq: m.sent + 1}
}

// amend changes a sync point and queues it if it is new. A queued one may
// be read by the server-to-client loop already, which does so holding
// Conns.ToClientMu. A new one is seen by nobody else until it is queued:
// it is changed without that lock, which the server-to-client loop may
// hold for long, streaming an answer of the batch whose end the server
// awaits (the rest of a COPY sent before this statement's batch was
// special; the server sends it only at the Sync).
//
// For a queued one, the same wait is avoided: when the server-to-client
// loop holds the lock, the change is left for it to make before it treats
// the sync point's next message. Every message the change concerns answers
// something the client-to-server loop sends after amend returns, so it
// comes later. The client-to-server loop must not read back what it
// changes this way; what it reads back (done, holdReady) it sets on new
// sync points only.
func (m *Machine) amend(sp *syncPoint, f func(*syncPoint)) {
	if !sp.queued {
		f(sp)
		sp.queued = true
		m.syncs.push(sp)
		return
	}
	if m.conns.ToClientMu.TryLock() {
		f(sp)
		m.conns.ToClientMu.Unlock()
		return
	}
	sp.pendingMu.Lock()
	sp.pending = append(sp.pending, f)
	sp.pendingMu.Unlock()
}

func queryBody(sql string) []byte { return append([]byte(sql), 0) }

// needsCare reports whether any statement is DDL or not simply allowed.
// (A SAVEPOINT needs none: remember gives its sync point its effect.)
func needsCare(ds []policy.StatementDecision) bool {
	for _, d := range ds {
		if d.Decision.DDL || d.Decision.Action != policy.Allow || len(d.Decision.Findings) > 0 {
			return true
		}
	}
	return false
}

// retryFor returns the retry state for a DDL statement in autocommit, or
// nil when retries are off.
func (m *Machine) retryFor(eng *policy.Engine, msg []byte) *retry {
	r := eng.Config().LockTimeoutRetries
	if r.Attempts <= 1 { // attempts counts every try, the first included
		return nil
	}
	return &retry{
		query: msg, attempts: r.Attempts - 1,
		initial: time.Duration(r.InitialBackoff), max: time.Duration(r.MaxBackoff),
		onRetry: func(attempt int, wait time.Duration) {
			m.log.Warn("lock_timeout: retrying DDL", "retry", attempt, "tries", r.Attempts, "backoff", wait.String(),
				"user", m.state.User, "database", m.state.Database)
			m.obs.LockTimeoutRetry(m.state.Target)
		},
	}
}

// verdict is what the decisions on a Query (or a Parse) add up to.
type verdict struct {
	reject     *policy.Finding
	rejects    []policy.Finding
	rewritten  string
	concurrent bool
	ddl        bool
	notices    [][]byte
	decisions  []policy.StatementDecision
	// restore puts the session's lock_timeout back after the statement
	// ran with the policy's (checkLockTimeout), which set it while the
	// transaction status was restoreFrom.
	restore     string
	restoreFrom byte
	// queueWait is how long the statement waited outside the lock queue,
	// for queueBlocker (lookBeforeQueue).
	queueWait    time.Duration
	queueBlocker string
	// buildWaits are the older sessions a concurrent index build was
	// found to wait for (tellBuildWaits).
	buildWaits []observe.WaitedSession
}

// sql returns the SQL to run for a one-statement Query.
func (v *verdict) sql(orig string) string {
	if v.rewritten != "" {
		return v.rewritten
	}
	return orig
}

func (m *Machine) verdictOf(ds []policy.StatementDecision) *verdict {
	v := &verdict{decisions: ds}
	for _, sd := range ds {
		d := sd.Decision
		v.ddl = v.ddl || d.DDL
		for i := range d.Findings {
			f := &d.Findings[i]
			switch f.Action {
			case policy.Reject:
				if v.reject == nil {
					v.reject = f
				}
				v.rejects = append(v.rejects, *f)
			case policy.Warn:
				v.notices = append(v.notices, m.notice("WARNING", f, ""))
			case policy.Rewrite:
				v.notices = append(v.notices, m.notice("NOTICE", f, d.Rewritten))
			}
		}
		if d.Action == policy.Rewrite && len(ds) == 1 {
			v.rewritten = d.Rewritten
		}
		if d.Concurrent && len(ds) == 1 {
			v.concurrent = true
		}
	}
	return v
}

// notice encodes a NoticeResponse for a warned or rewritten statement.
func (m *Machine) notice(severity string, f *policy.Finding, rewritten string) []byte {
	e := &wire.PGError{Severity: severity, Code: "01000", Detail: f.Detail, Hint: f.Hint}
	if rewritten != "" {
		// Done already: a recipe would read like an instruction.
		e.Message = fmt.Sprintf("pgguard: %s: rewritten to run without blocking writes: %s", f.RuleID, rewritten)
		e.Detail, e.Hint = strings.TrimSpace(f.Message+" "+f.Detail), ""
	} else {
		e.Message = "pgguard: " + f.RuleID + ": " + f.Message
	}
	return m.forClient(e).Encode(nil, true)
}

// forClient writes a message of pgguard's own in the session's
// client_encoding, as the server writes its own: the names in it, read
// from the client's statement, in the client's bytes (sqltext.MessageText).
// Sent as UTF-8, a refusal naming a table 表 reached an SJIS client as
// other characters.
func (m *Machine) forClient(e *wire.PGError) *wire.PGError {
	enc := m.state.Parameter("client_encoding")
	if !sqltext.ConvertsEncoding(enc) {
		return e
	}
	c := *e
	c.Message, c.Detail, c.Hint = sqltext.MessageText(enc, e.Message), sqltext.MessageText(enc, e.Detail), sqltext.MessageText(enc, e.Hint)
	return &c
}

// refusal is the ErrorResponse a refused statement gets: SQLSTATE 42501,
// the rule, the table and the lock in the message, the recipe in the hint.
func (m *Machine) refusal(v *verdict) *wire.PGError {
	f := v.reject
	msg := "pgguard: " + f.RuleID + ": " + f.Message
	if f.Lock != "" && !strings.Contains(strings.ToUpper(f.Message), strings.ToUpper(f.Lock)) {
		msg += " (takes " + f.Lock + " lock)"
	}
	detail := f.Detail
	for _, o := range v.rejects[1:] {
		detail = strings.TrimSpace(detail + " Also " + o.RuleID + ": " + o.Message)
	}
	if detail == "" {
		detail = "Refused by the pgguard policy before it reached the server; nothing ran."
	}
	if !m.state.InTransaction() && m.tool() != policy.ToolUnknown {
		if d := policy.AlreadyCommittedDetail(m.committed.get()); d != "" {
			detail += "\n" + d
		}
	}
	if f.Hint != "" {
		// Some tools print only the message and the detail (sequelize-cli
		// does), so the recipe goes in both.
		detail += "\nSafe recipe:\n" + f.Hint
	}
	return m.forClient(&wire.PGError{Severity: "ERROR", Code: wire.CodeInsufficientPrivilege, Message: msg, Detail: detail, Hint: f.Hint})
}

// userCodeInTx reports whether a statement that the fast path would let
// through calls user code inside a transaction block
// (policy.RunsUserCode): it is judged instead, so that the memory of the
// transaction learns that the server now holds locks no statement named
// (Decision.LocksUnnamedExclusive), and the server is asked about them
// before the transaction's next UPDATE or DELETE. Application
// transactions that call no user function pay nothing.
func (m *Machine) userCodeInTx(text string) bool {
	return m.state.InTransaction() && policy.RunsUserCode(text)
}

// maxUserCodeStmts bounds Machine.userCodeStmts.
const maxUserCodeStmts = 1024

// noteUserCodeStmt remembers a named Parse whose statement calls user
// code, for its Binds (bindUserCode).
func (m *Machine) noteUserCodeStmt(name []byte, text string) {
	if len(name) == 0 || m.userCodeStmtsFull || !policy.RunsUserCode(text) {
		return
	}
	if _, ok := m.userCodeStmts[string(name)]; ok {
		return
	}
	if len(m.userCodeStmts) >= maxUserCodeStmts {
		m.userCodeStmtsFull = true
		return
	}
	if m.userCodeStmts == nil {
		m.userCodeStmts = map[string]struct{}{}
	}
	m.userCodeStmts[string(name)] = struct{}{}
}

// bindUserCode: a Bind, in a transaction block, of a prepared statement
// that calls user code (a driver's statement cache runs it again without
// a Parse) tells the memory of the transaction, as its Parse would
// (userCodeInTx).
func (m *Machine) bindUserCode(stmt []byte) {
	if len(m.userCodeStmts) == 0 || !m.state.InTransaction() {
		return
	}
	if _, ok := m.userCodeStmts[string(stmt)]; !ok && !m.userCodeStmtsFull {
		return
	}
	e := policy.TxEffect{ExclusiveUnnamed: true}
	sp := m.batchPoint()
	m.tx.Expect(sp.seq, false, e)
	m.amend(sp, func(sp *syncPoint) { sp.effects = append(sp.effects, e) })
}

// noteDMLStmt remembers a named Parse of a statement that changes rows,
// for its Binds while the memory of the transaction holds anything
// (bindDML).
func (m *Machine) noteDMLStmt(name []byte, text string) {
	if len(name) == 0 || !sqltext.ChangesRows(text) {
		return
	}
	if _, ok := m.dmlStmts[string(name)]; !ok && len(m.dmlStmts) >= maxUserCodeStmts {
		return
	}
	if m.dmlStmts == nil {
		m.dmlStmts = map[string]string{}
	}
	m.dmlStmts[string(name)] = strings.Clone(text)
}

// bindDML judges the Bind of a prepared statement that changes rows
// (dmlStmts) in a transaction whose memory holds anything, as its Parse
// there would be judged: an UPDATE of a table the transaction holds ACCESS
// EXCLUSIVE on, prepared in an earlier transaction and run again by a
// driver's statement cache, is refused as that Parse is.
func (m *Machine) bindDML(query string, body []byte) error {
	if !m.unsynced && m.pending.Load() > 0 && !m.waitIdle() {
		return nil
	}
	portal, _, _ := wire.CStringBytes(body)
	return m.judgeBind(m.cfg.Policy.Engine(), boundStmt{query: query}, query, "", portal,
		func() error { return m.conns.sendMessage(wire.ClientBind, body) }, func() error { return nil })
}

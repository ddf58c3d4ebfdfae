package enforce

import (
	"errors"
	"log/slog"
	"sync/atomic"

	"github.com/pgguard/pgguard/policy"
	"github.com/pgguard/pgguard/policy/sqltext"

	"github.com/pgguard/pgguard/internal/observe"
	"github.com/pgguard/pgguard/internal/pgcatalog"
	"github.com/pgguard/pgguard/internal/wire"
)

// Session is what the machine asks of the session around it. The relay
// implements it; the machine calls it on slow paths only (a wait, a retry,
// a client that left), never per message.
type Session interface {
	// Done is closed when the session ends, so that waits end with it.
	Done() <-chan struct{}
	// Closing reports whether the session is being torn down on purpose.
	Closing() bool
	// Close ends the session: both connections close, and reads and writes
	// blocked on them fail.
	Close()
	// CancelRunning asks the server to cancel what the session's backend
	// runs, for a client that left mid-statement.
	CancelRunning()
}

// Config is what a machine needs of the server's configuration.
type Config struct {
	// Policy judges statements. Nil makes the machine a counter of sync
	// points: the relay then never calls OnQuery, OnParse or OnBind.
	Policy *Policy
	// Observer is told about statements, retries and clean-ups; nil: nobody.
	Observer observe.Observer
	// Log is the session's logger; nil: slog.Default().
	Log *slog.Logger
	// Profile, when set, is the policy profile forced for the target.
	Profile string
	// MaxStatementMessage bounds a Query, Parse or Bind read whole to judge
	// it, and MaxHeldAnswer an answer held back while its statement may be
	// retried; both are positive (proxy.Limits fills them).
	MaxStatementMessage int
	MaxHeldAnswer       int
	// Memory is the budget that the statement messages of all sessions
	// share; nil: none.
	Memory *Memory
	// Sizes, when set, answers the size questions of the session's
	// catalog with another database's sizes (pgcatalog.Borrowed).
	Sizes pgcatalog.SizeSource
}

var (
	// ErrClientLeft is returned by the client-to-server calls when the
	// client went away while its statement ran; the statement was cancelled.
	ErrClientLeft    = errors.New("client left mid-statement")
	errSessionClosed = errors.New("session closed")
)

// Machine is the enforcement machine of one session: the relay hands it
// the statements to judge (OnQuery, OnParse, OnBind), tells it of every
// sync message (OnSync) and ReadyForQuery (OnReadyForQuery), and lets it
// treat the server messages of the special sync points (OnServerMessage).
// The package doc describes the states of a sync point.
type Machine struct {
	// Set by New, read-only after: read by both loops for every message.
	conns *Conns
	sess  Session
	state *State
	cfg   Config
	obs   observe.Observer
	log   *slog.Logger
	// idleSignal is poked when pending drops to zero.
	idleSignal chan struct{}

	// The groups below are written for every message or sync point by one
	// loop; the padding keeps each on cache lines of its own, so that one
	// loop's writes do not slow the other loop's reads.
	_ cacheLinePad

	// Owned by the client-to-server loop.

	// sent counts the sync points (Query, Sync, FunctionCall) sent.
	sent uint64
	// unsynced: extended-protocol messages were sent since the last Sync.
	// batch is the special sync point of that batch, if it has one.
	unsynced bool
	batch    *syncPoint
	// batchChangesLockTimeout: a statement of the open batch may change
	// lock_timeout (policy.MayChangeLockTimeout).
	batchChangesLockTimeout bool
	// ltOps are what the statements sent since the last sync message do
	// to lock_timeout's source, after ltLead that were not listed
	// (noteLockTimeout); OnSync queues them in lt.
	ltOps  []policy.GUCOp
	ltLead int
	// restoreOwed puts back the session's lock_timeout, which a statement
	// that ran with the policy's left in a failed transaction block of its
	// own Query (endImposed); run once the session is idle again.
	restoreOwed string
	// tools recognises the migration tool behind the session from the
	// ledger tables its statements name.
	tools policy.ToolSense
	// rewrittenStmts are prepared statements rewritten to CONCURRENTLY,
	// or that wait for an advisory lock, prepared without being run; their
	// Bind decides whether lock_timeout is lifted (OnBind).
	rewrittenStmts map[string]*verdict
	// blockerStmts are prepared statements that block writes: a batch
	// that binds one gets pgguard's lock_timeout (batchlt.go).
	blockerStmts map[string]*blockerStmt
	// ahead: what planAhead found in the batch being received.
	ahead aheadBatch
	// boundStmts are prepared UPDATEs and DELETEs of a migration's
	// session, with parameters, prepared without their Bind: the Bind is
	// judged with its values (bound.go).
	boundStmts map[string]boundStmt
	// batchPrepared are the statements the open batch's Parse messages
	// prepare under a name, and the PREPAREs among them, by name, that an
	// EXECUTE may run (policy.PreparesFor): an EXECUTE later in the batch
	// (or in a Query sent behind it) runs them before
	// pg_prepared_statements can show them (Context.BatchPrepared).
	// aheadPrepared are those lookAhead has walked past, for the
	// statements it judges ahead. Both end with the batch.
	batchPrepared, aheadPrepared map[string]string
	// sawDDL: the session ran DDL, so it is a migration's (bound.go);
	// migProfile remembers whether a profile says so, for one engine and
	// application_name.
	sawDDL     bool
	migProfile struct {
		eng  *policy.Engine
		name string
		is   bool
	}
	// afterSync is work to do once the batch's Sync is sent.
	afterSync func() error
	// qbuf is a reusable buffer for statement bodies; inspected is the
	// Memory account of the body readInspected returned last, when it was
	// too large for qbuf (dropInspected).
	qbuf      []byte
	inspected *memReader
	pctx      policy.Context
	// judgedBusy: the last policyContext was made while sync points were
	// pending, so its transaction status may be stale.
	judgedBusy bool
	catalog    pgcatalog.Catalog
	// borrowed is catalog with its sizes from Config.Sizes, when set.
	borrowed *pgcatalog.Borrowed
	// probe stands in for the catalog while sync points are pending; warm
	// holds the catalog's answers for later statements of the open batch,
	// asked ahead (warm.go).
	probe probeCatalog
	warm  []*warmed
	// ledgerStmts are prepared ledger INSERTs that carry the migration's
	// name in a bind parameter; their Bind reports the record (ledgerBind).
	ledgerStmts map[string]ledgerStmt
	// userCodeStmts are the named prepared statements that call user code
	// (policy.RunsUserCode): their Binds in a transaction block tell the
	// memory of the transaction (bindUserCode). The set only grows (to
	// maxUserCodeStmts; past it every Bind counts): a name it keeps that
	// the server dropped costs a question, never a miss.
	userCodeStmts     map[string]struct{}
	userCodeStmtsFull bool
	// dmlStmts are the named prepared statements that change rows, by
	// name: while the memory of the transaction holds anything (an
	// ACCESS EXCLUSIVE lock), their Binds are judged as their Parse
	// would be (bindDML), since a driver's statement cache runs them
	// again with a Bind alone. Bounded by maxUserCodeStmts; past it, a
	// statement prepared later is judged at its Parse only.
	dmlStmts map[string]string
	// txStmts are the prepared statements (the unnamed one too) whose
	// Parse may end the transaction block or a savepoint level (BEGIN,
	// COMMIT, ROLLBACK TO, DO, CALL, ...: txStmtText): a Bind of one in a
	// batch ahead of a statement that blocks writes makes pgguard's SET a
	// session-level one (batchAhead). Only a Parse makes such a statement
	// (SQL PREPARE cannot). The set only grows (to maxUserCodeStmts; past
	// it every Bind counts): a name it keeps that the server dropped costs
	// a SET LOCAL, never a miss.
	txStmts     map[string]struct{}
	txStmtsFull bool
	// appTool is the tool that application name appToolName names (tool).
	appToolName  string
	appTool      policy.Tool
	appToolKnown bool

	_ cacheLinePad

	// Owned by the server-to-client loop.

	// received counts the sync points answered (ReadyForQuery).
	received uint64
	// ltDone counts the CommandCompletes of the sync point being
	// answered, ltFailed says it had an ErrorResponse (ltFollow).
	ltDone   int
	ltFailed bool

	_ cacheLinePad

	// Shared by the two loops.

	// pending counts the Query, Sync and FunctionCall messages sent to the
	// server whose ReadyForQuery has not come back yet: non-zero means a
	// statement may be running. Both loops write it for every sync point.
	pending atomic.Int32

	_ cacheLinePad

	// syncs queues the sync points that need more than counting; the
	// server-to-client loop reads its count for every message.
	syncs syncQueue
	// buildingIndex names the index of a concurrent statement in flight,
	// so that a client whose server dies is told what may be left behind.
	buildingIndex atomic.Pointer[string]
	// tx remembers what the open transaction did: tables created,
	// constraints added NOT VALID, tables locked ACCESS EXCLUSIVE.
	tx policy.TxMemory
	// lt follows whether the client set lock_timeout, with the outcome
	// of each transaction (ltsource.go).
	lt ltFollow
	// committed lists DDL committed in autocommit since the tool last
	// recorded a migration (written by the server-to-client loop).
	committed committed
	// acct matches the server's answers against the messages sent, to
	// know which sync messages the server skips (accounting.go).
	acct accounting
}

// cacheLinePad separates fields that different goroutines write.
type cacheLinePad [64]byte

// New returns the machine of one session whose relay is about to start.
// conns and state belong to the session; the machine keeps the pointers.
func New(conns *Conns, sess Session, state *State, cfg Config) *Machine {
	m := &Machine{conns: conns, sess: sess, state: state, cfg: cfg,
		obs: cfg.Observer, log: cfg.Log, idleSignal: make(chan struct{}, 1)}
	if m.obs == nil {
		m.obs = observe.Nop{}
	}
	if m.log == nil {
		m.log = slog.Default()
	}
	m.catalog.Q = sessionQuerier{m}
	m.catalog.Memo = &pgcatalog.SessionMemo{}
	if cfg.Sizes != nil {
		m.borrowed = &pgcatalog.Borrowed{Catalog: &m.catalog, Src: cfg.Sizes, Renames: pgcatalog.RenamesOf(cfg.Sizes)}
	}
	conns.acct = &m.acct
	return m
}

// sessionCatalog is the catalog statements are judged with: the session's
// own, with its sizes borrowed when the target says so.
func (m *Machine) sessionCatalog(c *pgcatalog.Catalog) policy.Catalog {
	if m.cfg.Sizes == nil {
		return c
	}
	if c == &m.catalog {
		return m.borrowed
	}
	return &pgcatalog.Borrowed{Catalog: c, Src: m.cfg.Sizes, Renames: m.borrowed.Renames}
}

// Pending is the number of sync points sent to the server and not answered
// yet: non-zero means a statement may be running.
func (m *Machine) Pending() int32 { return m.pending.Load() }

// OnSync counts a message the server answers with one ReadyForQuery
// (Query, Sync, FunctionCall) and ends the extended-protocol batch, whose
// special sync point, already queued, is this one. The client-to-server
// loop calls it right before it forwards such a message as it is.
func (m *Machine) OnSync() {
	m.queueLockTimeout(m.newSyncPoint())
	m.batch, m.unsynced, m.batchChangesLockTimeout = nil, false, false
	m.batchPrepared = nil
	m.ahead = aheadBatch{}
	if m.warm != nil {
		m.warm = nil // judged ahead for this batch only
	}
}

// OnExtended records an extended-protocol message (Parse, Bind, Describe,
// Execute, Close) that the relay forwards as it is: it runs in the
// implicit transaction that the next Sync ends.
func (m *Machine) OnExtended() { m.unsynced = true }

// WatchesBinds reports whether a Bind must go to OnBind: a prepared
// statement that pgguard rewrote, or that waits for an advisory lock, or a
// prepared ledger INSERT may be bound.
// The client-to-server loop calls it, and Close goes to OnClose while it
// reports true.
func (m *Machine) WatchesBinds() bool {
	m.settle()
	return len(m.rewrittenStmts) > 0 || len(m.ledgerStmts) > 0 || len(m.boundStmts) > 0 || len(m.userCodeStmts) > 0 || len(m.blockerStmts) > 0 ||
		len(m.dmlStmts) > 0 && m.tx.Active()
}

// AfterSync does the work the batch left for after its Sync was sent: for
// a concurrent statement, awaiting its answer, restoring lock_timeout,
// cleaning up and releasing the ReadyForQuery held back. The
// client-to-server loop calls it after each Sync and FunctionCall it
// forwarded.
func (m *Machine) AfterSync() error {
	f := m.afterSync
	if f == nil || m.acct.maySkip() {
		// A FunctionCall behind an open batch (a Query or FunctionCall
		// went out in it): if the batch failed, the server answers
		// nothing until the Sync the client sends later; the work waits
		// for the AfterSync of that Sync.
		return nil
	}
	m.afterSync = nil
	return f()
}

// newSyncPoint counts a message that the server will answer with one
// ReadyForQuery and returns its sequence number.
func (m *Machine) newSyncPoint() uint64 {
	m.sent++
	m.pending.Add(1)
	return m.sent
}

// OnServerMessage treats one server message whose header the
// server-to-client loop has read (type typ, n body bytes still in
// FromServer) when it belongs to a special sync point, and reports whether
// it did. Otherwise the relay forwards the message as it is, and calls
// OnReadyForQuery for a ReadyForQuery.
func (m *Machine) OnServerMessage(typ wire.ServerMsg, n int) (bool, error) {
	m.AccountServer(typ)
	if m.syncs.n.Load() != 0 {
		return m.onSpecial(typ, n)
	}
	// The common case: nothing special is queued, no lock is taken.
	return false, nil
}

func (m *Machine) onSpecial(typ wire.ServerMsg, n int) (bool, error) {
	sp := m.syncs.head(m.received + 1)
	if sp == nil {
		return false, nil
	}
	return true, m.special(sp, typ, n)
}

// AccountServer matches a server message, whose header was just read,
// against the messages sent (accounting.go), and ends each sync point that
// the server turned out to have skipped: it gets no ReadyForQuery. The
// event loop calls it for every server message it relays; OnServerMessage
// calls it for the goroutine relay.
func (m *Machine) AccountServer(typ wire.ServerMsg) {
	switch typ {
	case wire.ServerCommandComplete:
		m.ltDone++
	case wire.ServerErrorResponse:
		m.ltFailed = true
	}
	for n := m.acct.server(typ); n > 0; n-- {
		m.skipSync()
	}
}

// Sent records a client message the event loop writes to the server as it
// is; the goroutine relay's writes are recorded by Conns.
func (m *Machine) Sent(typ wire.ClientMsg) { m.acct.sent(typ) }

// skipSync ends a sync point that the server skipped: no ReadyForQuery
// comes for it, nothing more of its answer either.
func (m *Machine) skipSync() {
	if sp := m.syncs.head(m.received + 1); sp != nil {
		m.conns.ToClientMu.Lock()
		sp.applyPending()
		m.release(sp)
		m.syncs.pop()
		code := sp.errCode
		if sp.swapped {
			code = sp.swap.Code
		}
		for _, ev := range sp.events {
			m.report(ev, sp.tag, code)
		}
		sp.finish(outcome{status: m.state.TxStatus(), errCode: sp.errCode, errMsg: sp.errMsg, rows: sp.rows, skipped: true})
		m.conns.ToClientMu.Unlock()
	}
	m.received++
	if m.pending.Add(-1) == 0 {
		select {
		case m.idleSignal <- struct{}{}:
		default:
		}
	}
}

// OnReadyForQuery records a ReadyForQuery: the sync point is answered.
func (m *Machine) OnReadyForQuery(status byte) {
	m.settleLockTimeout(m.received+1, m.state.TxStatus(), status)
	m.state.SetTxStatus(status)
	if status == 'I' {
		m.tx.Reset()
	}
	m.received++
	if m.pending.Add(-1) == 0 {
		select {
		case m.idleSignal <- struct{}{}:
		default:
		}
	}
}

// CutOff is what a client is told, besides the lost connection, when the
// server goes away during a concurrent build; ok is false when none runs.
func (m *Machine) CutOff() (detail, hint string, ok bool) {
	index := m.buildingIndex.Load()
	if index == nil {
		return "", "", false
	}
	detail, hint = buildCutOff(*index)
	return detail, hint, true
}

// Drain ends every queued sync point whose waiter still waits. The relay
// calls it once both loops have stopped.
func (m *Machine) Drain() { m.syncs.drain() }

// forgetMemo drops the session's kept rules, triggers and function bodies
// (pgcatalog.SessionMemo) before statements that may change them or the
// search_path their names were looked up by: DDL, SET, RESET, DISCARD,
// and anything that names search_path (set_config). Sessions that never
// asked (the application's) pay one atomic load.
func (m *Machine) forgetMemo(ds []policy.StatementDecision) {
	if !m.catalog.Memo.Kept() {
		return
	}
	for _, sd := range ds {
		if sd.Decision.DDL || sqltext.Classify(sd.Statement.Text) == sqltext.ClassSession || changesLookup(sd.Statement.Text) {
			m.catalog.Memo.Forget()
			return
		}
	}
}

// changesLookup reports whether text may change how the session's
// unqualified names resolve (its search_path, directly, by a reset, or by
// a role whose settings or $user apply): a coarse test of the words, for
// sessions whose memo holds anything.
func changesLookup(text string) bool {
	for _, w := range []string{"search_path", "reset", "discard", "role", "authorization"} {
		if sqltext.ContainsFold(text, w) {
			return true
		}
	}
	return false
}

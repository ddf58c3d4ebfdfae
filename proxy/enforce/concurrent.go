package enforce

import (
	"fmt"
	"time"

	pg_query "github.com/pganalyze/pg_query_go/v6"
	"github.com/pgguard/pgguard/policy"
	"github.com/pgguard/pgguard/policy/sqltext"

	"github.com/pgguard/pgguard/internal/pgcatalog"
	"github.com/pgguard/pgguard/internal/wire"

	"github.com/pgguard/pgguard/internal/observe"
)

// A CONCURRENTLY statement takes only SHARE UPDATE EXCLUSIVE, which blocks
// no reads or writes, but it waits for every transaction that could see the
// table: the session's short lock_timeout would kill it for nothing. So
// would it kill a migration tool's wait for the lock that serialises two
// runs (pg_advisory_lock, or the row of knex_migrations_lock that a second
// knex run's UPDATE waits on), which blocks nobody else either. pgguard
// lifts lock_timeout (and applies concurrent_statement_timeout) for exactly
// that statement, restores it afterwards, and drops the INVALID index a
// failed or cancelled build of its own left behind, so the migration can
// simply run again.

// liftSQL replaces lock_timeout with the policy's
// concurrent_statement_timeout (0: none) for the concurrent statement. Its
// first two columns are the value it replaced and that value's source, read
// (in FROM) before set_config runs: restoreOf puts back exactly that, a
// lower value the client set included, and leaves no setting of pgguard's
// behind. Its third column says whether an index named index exists
// already: a build that fails then did not create it, and it is never
// dropped.
//
// Inside a transaction block (inBlock: a wait for a migration tool's lock)
// the setting is transactional: a statement that fails aborts the block,
// and the ROLLBACK (or ROLLBACK TO SAVEPOINT) that must follow undoes the
// lift with everything else, so no later statement of the client runs
// with it. There the lift is made only while the block holds nothing that
// blocks others: no lock on a table stronger than ROW EXCLUSIVE, no row it
// wrote (its transaction id), no other kind of lock but advisory ones;
// otherwise the wait keeps the policy's lock_timeout, as on any statement.
func liftSQL(timeout time.Duration, index string, inBlock bool) string {
	exists := "false"
	if index != "" {
		exists = "pg_catalog.to_regclass(" + pgcatalog.QuoteLiteral(index) + ") IS NOT NULL"
	}
	lifted := fmt.Sprintf("'%dms'", timeout.Milliseconds())
	if inBlock {
		lifted = "CASE WHEN EXISTS (SELECT 1 FROM pg_catalog.pg_locks l WHERE l.pid = pg_catalog.pg_backend_pid() AND l.granted" +
			" AND (l.locktype = 'transactionid' OR l.locktype = 'relation' AND l.mode NOT IN ('AccessShareLock', 'RowShareLock', 'RowExclusiveLock')" +
			" OR l.locktype NOT IN ('relation', 'transactionid', 'virtualxid', 'advisory')))" +
			" THEN pg_catalog.current_setting('lock_timeout') ELSE " + lifted + " END"
	}
	return "SELECT s.setting, s.source, " + exists + ", pg_catalog.set_config('lock_timeout', " + lifted + ", false)" +
		" FROM (SELECT pg_catalog.current_setting('lock_timeout') AS setting, source FROM pg_catalog.pg_settings WHERE name = 'lock_timeout') s"
}

// restoreOf puts back the lock_timeout that the lift (liftSQL, answered
// with lift) replaced: RESET when it was not the session's own SET, so
// that pg_settings.source is as it was too. "" when the lift's answer is
// missing (it failed, and set nothing).
func restoreOf(lift outcome) string {
	if len(lift.rows) != 1 || len(lift.rows[0]) != 4 || lift.rows[0][0] == nil {
		return ""
	}
	if src := lift.rows[0][1]; src != nil && *src != "session" {
		return "RESET lock_timeout"
	}
	return "SET lock_timeout = " + pgcatalog.QuoteLiteral(*lift.rows[0][0])
}

// building is a concurrent statement in flight, owned by the
// client-to-server loop; the index name is also published in
// Machine.buildingIndex for the server-to-client loop.
type building struct {
	v    *verdict
	lift *syncPoint // pgguard's lift query, answered before the statement
	sp   *syncPoint // the statement's sync point
}

// beginConcurrent sends the lift and queues the sync point the concurrent
// statement's answer will use. The statement must be the next thing sent.
func (m *Machine) beginConcurrent(v *verdict, events []*observe.StatementEvent) (*building, error) {
	cfg := m.cfg.Policy.Engine().Config()
	index := concurrentIndexName(v)
	lift := &syncPoint{mode: swallow, done: make(chan struct{}), queued: true}
	lift.seq = m.newSyncPoint()
	m.syncs.push(lift)
	inBlock := m.state.TxStatus() == 'T'
	if err := m.conns.send(internalMessages(liftSQL(time.Duration(cfg.ConcurrentStatementTimeout), index, inBlock))); err != nil {
		return nil, err
	}
	sp := m.nextSpecial()
	m.amend(sp, func(sp *syncPoint) {
		sp.notices = append(sp.notices, v.notices...)
		sp.events = append(sp.events, events...)
		sp.holdReady = true
		sp.done = make(chan struct{})
	})
	if v.concurrent && v.ddl {
		if index == "" {
			index = "(unnamed)"
		}
		m.buildingIndex.Store(&index)
	}
	return &building{v: v, lift: lift, sp: sp}, nil
}

// endConcurrent waits for the concurrent statement's answer, restores
// lock_timeout, drops the INVALID index a failed build of this statement
// left, and then, with ready, sends the client the ReadyForQuery held back:
// only now may the client go on, say to run the migration again.
func (m *Machine) endConcurrent(b *building, ready bool) error {
	out, clientLeft := m.awaitOutcome(b.sp, true)
	if out.closed {
		return errSessionClosed
	}
	existed := true
	if lo := b.lift.out; len(lo.rows) == 1 && len(lo.rows[0]) == 4 && lo.rows[0][2] != nil {
		existed = *lo.rows[0][2] == "t"
	}
	// A statement that failed inside a transaction block aborted it: the
	// restore cannot run, and needs not, the rollback that must come
	// undoes the lift (liftSQL).
	if out.status != 'E' {
		if restore := restoreOf(b.lift.out); restore != "" {
			if _, err := m.internalQuery(restore); err != nil {
				return err
			}
		}
	}
	if out.errCode != "" {
		m.cleanupInvalidIndex(b.v, out, existed)
	}
	m.buildingIndex.Store(nil)
	if clientLeft {
		return ErrClientLeft
	}
	if !ready {
		return nil
	}
	m.conns.ToClientMu.Lock()
	defer m.conns.ToClientMu.Unlock()
	wire.WriteMessage(m.conns.ToClient, wire.ServerReadyForQuery, []byte{out.status})
	return m.conns.ToClient.Flush()
}

// liftable reports whether a statement alone in its Query or
// extended-protocol batch may run with the lift: a concurrent one
// (CONCURRENTLY) only outside a transaction block, where alone it can run
// at all; a wait for a migration tool's lock (policy.WaitsForToolLock)
// also inside a transaction block that has not failed, where the lift is
// transactional (liftSQL).
func (m *Machine) liftable(concurrent, waitsForToolLock bool) bool {
	switch m.state.TxStatus() {
	case 'I':
		return concurrent || waitsForToolLock
	case 'T':
		return waitsForToolLock && !concurrent
	}
	return false
}

// liftsToolLocks reports whether a migration tool's wait for its own lock
// gets the lift: only under lock_timeout_scope session, where the blanket
// lock_timeout would cancel it. Under scope ddl such a wait (it blocks
// nobody) runs with the session's own lock_timeout, as on PostgreSQL.
func (m *Machine) liftsToolLocks() bool {
	return m.cfg.Policy.Engine().Config().LockTimeoutScope == policy.ScopeSession
}

// runLifted sends a one-statement Query with the lift around it and waits
// for it: a CONCURRENTLY statement, or a wait for an advisory lock.
func (m *Machine) runLifted(v *verdict, events []*observe.StatementEvent, msg []byte) error {
	b, err := m.beginConcurrent(v, events)
	if err != nil {
		return err
	}
	m.OnSync()
	if err := m.conns.send(msg); err != nil {
		return err
	}
	return m.endConcurrent(b, true)
}

// buildCutOff is what a client whose concurrent build was cut off by the
// server's end is told: it may not know that pgguard rewrote its statement,
// and the build leaves an INVALID index behind.
func buildCutOff(index string) (detail, hint string) {
	return "pgguard was running the statement as a concurrent build (CONCURRENTLY). A build that is cut off leaves an INVALID index " +
			index + " behind, which slows every write and is not used by queries.",
		"Once the server is back, list what is left with: SELECT indexrelid::regclass FROM pg_index WHERE NOT indisvalid; " +
			"and drop it with DROP INDEX CONCURRENTLY IF EXISTS " + index + "; before running the migration again."
}

// withBuildCutOff adds buildCutOff's detail and hint to a FATAL or PANIC
// ErrorResponse body that has none, while a concurrent build is in flight.
func (m *Machine) withBuildCutOff(body []byte) []byte {
	index := m.buildingIndex.Load()
	if index == nil {
		return body
	}
	sev, hasDetail := "", false
	for b := body; len(b) > 1; {
		f := b[0]
		v, rest, ok := wire.CString(b[1:])
		if !ok {
			return body
		}
		switch f {
		case 'V':
			sev = v
		case 'S':
			if sev == "" {
				sev = v
			}
		case 'D', 'H':
			hasDetail = true
		}
		b = rest
	}
	if (sev != "FATAL" && sev != "PANIC") || hasDetail || len(body) == 0 || body[len(body)-1] != 0 {
		return body
	}
	detail, hint := buildCutOff(*index)
	out := append([]byte(nil), body[:len(body)-1]...)
	out = append(append(append(out, 'D'), detail...), 0)
	out = append(append(append(out, 'H'), hint...), 0)
	return append(out, 0)
}

// cleanupInvalidIndex drops the index a failed CREATE INDEX CONCURRENTLY of
// this statement left INVALID. Only an index this statement created: one
// that existed before it (the statement then failed on the name, or IF NOT
// EXISTS skipped it) is never touched, and neither is one that another
// session is building right now under the same name.
func (m *Machine) cleanupInvalidIndex(v *verdict, out outcome, existed bool) {
	name := concurrentIndexName(v)
	if name == "" {
		if v.ddl {
			m.log.Warn("a concurrent build failed; if it left an INVALID index, drop it before re-running", "sqlstate", out.errCode)
		}
		return
	}
	if existed || out.errCode == "42P07" { // duplicate_table: the name was taken
		return
	}
	row, ok := m.catalog.One("SELECT x.indisvalid, EXISTS (SELECT 1 FROM pg_catalog.pg_stat_progress_create_index p" +
		" WHERE p.index_relid = c.oid AND p.pid <> pg_catalog.pg_backend_pid()" +
		// Another database may use the same OID for another index.
		" AND p.datid = (SELECT oid FROM pg_catalog.pg_database WHERE datname = pg_catalog.current_database()))" +
		" FROM pg_catalog.pg_class c JOIN pg_catalog.pg_index x ON x.indexrelid = c.oid" +
		" WHERE c.oid = pg_catalog.to_regclass(" + pgcatalog.QuoteLiteral(name) + ")")
	if !ok || len(row) != 2 || pgcatalog.IsTrue(row[0]) || pgcatalog.IsTrue(row[1]) {
		return
	}
	res, err := m.inClientEncoding(m.internalQuery, "DROP INDEX CONCURRENTLY IF EXISTS "+name)
	if err != nil || res.errCode != "" {
		m.log.Error("could not drop the INVALID index a failed concurrent build left behind; drop it before re-running",
			"index", name, "sqlstate", res.errCode)
		return
	}
	m.log.Warn("dropped the INVALID index a failed concurrent build left behind", "index", name, "sqlstate", out.errCode)
	m.obs.ConcurrentCleanup(m.state.Target)
}

// concurrentIndexStmt returns the statement of a one-statement CREATE
// INDEX CONCURRENTLY, the client's own or a rewrite, or nil.
func concurrentIndexStmt(v *verdict) *pg_query.IndexStmt {
	if len(v.decisions) != 1 {
		return nil
	}
	sql := v.decisions[0].Statement.Text
	if v.rewritten != "" {
		sql = v.rewritten
	}
	tree, err := sqltext.PgParse(sql)
	if err != nil || len(tree.Stmts) != 1 {
		return nil
	}
	if is := tree.Stmts[0].Stmt.GetIndexStmt(); is != nil && is.Concurrent {
		return is
	}
	return nil
}

// concurrentIndexName returns the (quoted where needed) name of the index a
// one-statement CREATE INDEX CONCURRENTLY creates, or "" if it names none.
func concurrentIndexName(v *verdict) string {
	is := concurrentIndexStmt(v)
	if is == nil || is.Idxname == "" {
		return ""
	}
	name := policy.QuoteIdent(is.Idxname)
	if is.Relation != nil && is.Relation.Schemaname != "" {
		name = policy.QuoteIdent(is.Relation.Schemaname) + "." + name
	}
	return name
}

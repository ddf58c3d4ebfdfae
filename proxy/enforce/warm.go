package enforce

import (
	"context"
	"encoding/binary"
	"github.com/pgguard/pgguard/policy/sqltext"
	"time"

	pg_query "github.com/pganalyze/pg_query_go/v6"

	"github.com/pgguard/pgguard/internal/pgcatalog"
	"github.com/pgguard/pgguard/internal/wire"
	"github.com/pgguard/pgguard/policy"
)

// A statement's verdict must not depend on how the client batches it: the
// server's catalog is the oracle. The catalog is asked on the session's own
// connection, which is possible only at a statement boundary with nothing
// unanswered. Two things make a statement arrive when it is not:
//
//   - sync points still pending (a pipeline, two Queries in one write):
//     the statement is judged first with probeCatalog, which answers
//     nothing and records that it was asked; when it was, the machine
//     waits for the session to be idle and judges again with the catalog
//     (OnQuery, OnParse).
//   - earlier messages of the same unsynced batch (pgjdbc sends BEGIN in
//     the first statement's batch; pgx prepares a batch's statements in
//     one). The catalog cannot be asked between them without a Sync of
//     pgguard's own, which the client would notice. When the batch's
//     first Parse is read, and what lies ahead of a later Parse in the
//     batch cannot change what the catalog says (Parse, Describe and
//     Close, and the execution of BEGIN or START TRANSACTION), that later
//     statement is judged ahead, before anything of the batch reaches the
//     server, and the catalog's answers are recorded (warmed); its own
//     judgement then replays them. A question not recorded is unknown.

// probeCatalog answers every question "unknown" and records that one was
// asked: the verdict then needs the catalog.
type probeCatalog struct{ asked bool }

var (
	_ policy.Catalog            = (*probeCatalog)(nil)
	_ policy.ColumnTyper        = (*probeCatalog)(nil)
	_ policy.ColumnIndexCatalog = (*probeCatalog)(nil)
	_ policy.DomainCatalog      = (*probeCatalog)(nil)
	_ policy.MatViewPopulater   = (*probeCatalog)(nil)
	_ policy.PartitionCatalog   = (*probeCatalog)(nil)
	_ policy.ConcurrentCatalog  = (*probeCatalog)(nil)
	_ policy.PreparedCatalog    = (*probeCatalog)(nil)
	_ policy.EffectsCatalog     = (*probeCatalog)(nil)
	_ policy.FunctionCatalog    = (*probeCatalog)(nil)
	_ policy.CascadeCatalog     = (*probeCatalog)(nil)
)

// CascadeDrops (rules drop-column and drop-table: what DROP TYPE or
// FUNCTION ... CASCADE drops) needs the catalog too.
func (p *probeCatalog) CascadeDrops(context.Context, string, string, string) ([]policy.Dropped, bool) {
	p.asked = true
	return nil, false
}

// TableEffects, EstimateChanges and FunctionBodies (rule large-dml's
// rules, triggers and called functions) need the catalog too.
func (p *probeCatalog) TableEffects(context.Context, string, string) (policy.Effects, bool) {
	p.asked = true
	return policy.Effects{}, false
}

func (p *probeCatalog) EstimateChanges(context.Context, string) ([]policy.TableRows, bool) {
	p.asked = true
	return nil, false
}

func (p *probeCatalog) FunctionBodies(context.Context, []string) ([]policy.Function, bool) {
	p.asked = true
	return nil, false
}

func (p *probeCatalog) PreparedStatement(context.Context, string) (string, []string, bool) {
	p.asked = true
	return "", nil, false
}

func (p *probeCatalog) SystemCatalog(context.Context, string) (bool, bool) {
	p.asked = true
	return false, false
}

func (p *probeCatalog) ExclusionIndexes(context.Context, string) ([]string, bool) {
	p.asked = true
	return nil, false
}

func (p *probeCatalog) ExclusionIndexesIn(context.Context, string) ([]string, bool) {
	p.asked = true
	return nil, false
}

func (p *probeCatalog) HasDefaultPartition(context.Context, string) (bool, bool) {
	p.asked = true
	return false, false
}

func (p *probeCatalog) TableSize(context.Context, string) (policy.TableSize, bool) {
	p.asked = true
	return policy.TableSize{}, false
}

func (p *probeCatalog) HasValidatedNotNullCheck(context.Context, string, string) (bool, bool) {
	p.asked = true
	return false, false
}

func (p *probeCatalog) IsPartitioned(context.Context, string) (bool, bool) {
	p.asked = true
	return false, false
}

func (p *probeCatalog) Index(context.Context, string) (bool, bool, bool) {
	p.asked = true
	return false, false, false
}

func (p *probeCatalog) HasUniqueIndex(context.Context, string) (bool, bool) {
	p.asked = true
	return false, false
}

func (p *probeCatalog) FunctionVolatility(context.Context, string) (policy.Volatility, bool) {
	p.asked = true
	return policy.VolatilityUnknown, false
}

func (p *probeCatalog) EstimateRows(context.Context, string) (int64, bool) {
	p.asked = true
	return 0, false
}

func (p *probeCatalog) ColumnIndexes(context.Context, string, string) ([]string, []string, bool) {
	p.asked = true
	return nil, nil, false
}

func (p *probeCatalog) Domain(context.Context, string) (bool, bool, string, string, bool) {
	p.asked = true
	return false, false, "", "", false
}

func (p *probeCatalog) ColumnType(context.Context, string, string) (string, bool) {
	p.asked = true
	return "", false
}

func (p *probeCatalog) MatViewPopulated(context.Context, string) (bool, bool) {
	p.asked = true
	return false, false
}

func (p *probeCatalog) PartitionKey(context.Context, string) (string, []string, bool) {
	p.asked = true
	return "", nil, false
}

func (p *probeCatalog) HasValidatedCheckOn(context.Context, string, []string) (bool, bool) {
	p.asked = true
	return false, false
}

// asksCatalog reports whether the last judgement asked probeCatalog, so
// that a statement judged while sync points were pending must be judged
// again once the session is idle.
func (m *Machine) asksCatalog() bool { return m.probe.asked }

// warmed is what the catalog answered, ahead, for a later statement of
// the batch being received.
type warmed struct {
	query   string
	idle    bool
	version int
	answers map[string]warmAnswer
	// catalog: the judgement asked the catalog, whose answers are
	// recorded; looked: the statement takes a lock that blocks writes,
	// and pgguard looked at the lock queue for it before the batch was
	// sent (lookBeforeQueue): reject is the refusal when the way was
	// still blocked at the deadline, queueWait and queueBlocker the wait.
	catalog, looked bool
	reject          *policy.Finding
	queueWait       time.Duration
	queueBlocker    string
}

type warmAnswer struct {
	rows [][]*string
	ok   bool
}

// guardedKey marks an answer given by QueryGuarded.
const guardedKey = "\x00guarded\x00"

// recordingQuerier runs the catalog's queries and records their answers.
type recordingQuerier struct {
	q sessionQuerier
	w *warmed
}

func (r recordingQuerier) Query(sql string) ([][]*string, bool) {
	rows, ok := r.q.Query(sql)
	r.w.answers[sql] = warmAnswer{rows, ok}
	return rows, ok
}

func (r recordingQuerier) QueryGuarded(sql string) ([][]*string, bool) {
	rows, ok := r.q.QueryGuarded(sql)
	r.w.answers[guardedKey+sql] = warmAnswer{rows, ok}
	return rows, ok
}

func (r recordingQuerier) Idle() bool         { return r.w.idle }
func (r recordingQuerier) ServerVersion() int { return r.w.version }

// replayQuerier answers from what was recorded; anything else is unknown.
type replayQuerier struct{ w *warmed }

func (r replayQuerier) Query(sql string) ([][]*string, bool) {
	a := r.w.answers[sql]
	return a.rows, a.ok
}

func (r replayQuerier) QueryGuarded(sql string) ([][]*string, bool) {
	a := r.w.answers[guardedKey+sql]
	return a.rows, a.ok
}

func (r replayQuerier) Idle() bool         { return r.w.idle }
func (r replayQuerier) ServerVersion() int { return r.w.version }

var (
	_ pgcatalog.GuardedQuerier = recordingQuerier{}
	_ pgcatalog.GuardedQuerier = replayQuerier{}
)

// warmCatalog returns the recorded catalog for a statement of the open
// batch judged ahead, or nil.
func (m *Machine) warmCatalog(query string) policy.Catalog {
	for _, w := range m.warm {
		if w.query == query && w.catalog {
			return m.sessionCatalog(&pgcatalog.Catalog{Q: replayQuerier{w}})
		}
	}
	return nil
}

// warmLook gives v what the look at the lock queue found for a statement
// of the open batch judged ahead (judgeAhead): the refusal, when the way
// was blocked at the deadline, and the wait.
func (m *Machine) warmLook(v *verdict, query string) {
	for _, w := range m.warm {
		if w.query != query || !w.looked {
			continue
		}
		v.queueWait, v.queueBlocker = w.queueWait, w.queueBlocker
		if w.reject != nil && v.reject == nil {
			v.reject, v.rejects = w.reject, []policy.Finding{*w.reject}
		}
		return
	}
}

// lookAhead is called for the first Parse of a batch (nothing unsynced),
// of statement currentName with query current, before it is sent. It
// walks what the client has already sent of the batch (never waiting for
// more) and judges ahead each later statement that needs the catalog and
// that only Parse, Describe, Close, the execution of a BEGIN just parsed
// and, in a migration's session, the execution of statements that
// runsAhead precede. It reports false when the session ended while it
// waited. Application traffic (Parse, Bind of a statement other than
// BEGIN) stops the walk at its second message, allocating nothing.
func (m *Machine) lookAhead(eng *policy.Engine, currentName, current []byte) bool {
	m.warm = nil
	buffered := m.conns.FromClient.Buffered()
	if buffered < 5 {
		return true
	}
	// What the batch prepares for an EXECUTE, as far as the walk went.
	notePrepared(&m.aheadPrepared, string(currentName), wire.BytesView(current))
	defer func() { m.aheadPrepared = nil }()
	lastName, lastQuery := currentName, current // the last Parse's
	beginPortal, began := []byte(nil), false
	// In a migration's session the walk goes on past the execution of a
	// statement parsed in the batch whose running cannot change what the
	// catalog answers for the later ones (runsAhead): they are then
	// judged, as the statements after it in one Query are, with the
	// catalog as it is before the batch. An application's session stops
	// at it, as before: its traffic pays nothing new.
	pastRuns := m.migration(eng)
	var bound map[string]bool // portals bound to such statements
	// The walk stops at the first message that may change what the
	// catalog says, or that it does not know.
	for off := 0; off+5 <= buffered; {
		b, err := m.conns.FromClient.Peek(off + 5)
		if err != nil {
			return true
		}
		typ, l := wire.ClientMsg(b[off]), int(binary.BigEndian.Uint32(b[off+1:off+5]))
		if l < 4 || off+1+l > buffered {
			return true
		}
		switch typ {
		case wire.ClientDescribe, wire.ClientClose:
		case wire.ClientBind:
			// BEGIN's execution: it opens a transaction block, the
			// catalog's answers stay what they were; in a migration's
			// session, that of a statement that runsAhead.
			if began && !pastRuns {
				return true // one BEGIN is enough; a second is unusual
			}
			body, err := m.conns.FromClient.Peek(off + 1 + l)
			if err != nil {
				return true
			}
			portal, rest, ok := wire.CStringBytes(body[off+5:])
			if !ok {
				return true
			}
			stmt, _, ok := wire.CStringBytes(rest)
			if !ok || string(stmt) != string(lastName) {
				return true
			}
			switch q := wire.BytesView(lastQuery); {
			case !began && policy.BeginsTransaction(q):
				beginPortal, began = portal, true
			case pastRuns && runsAhead(q):
				if bound == nil {
					bound = map[string]bool{}
				}
				bound[string(portal)] = true
			default:
				return true
			}
		case wire.ClientExecute:
			body, err := m.conns.FromClient.Peek(off + 1 + l)
			if err != nil {
				return true
			}
			portal, _, ok := wire.CStringBytes(body[off+5:])
			if !ok || !(began && string(portal) == string(beginPortal) || bound[string(portal)]) {
				return true
			}
		case wire.ClientParse:
			body, err := m.conns.FromClient.Peek(off + 1 + l)
			if err != nil {
				return true
			}
			name, rest, ok := wire.CStringBytes(body[off+5:])
			if !ok {
				return true
			}
			query, params, ok := wire.CStringBytes(rest)
			if !ok {
				return true
			}
			if _, plain := m.plainText(eng, wire.BytesView(query), m.state.BackslashQuote()); !plain || m.tx.Active() || m.userCodeInTx(wire.BytesView(query)) {
				beginPortal = append([]byte(nil), beginPortal...)
				judged := string(query)
				if m.needsValues(eng, judged) {
					// With the values its Bind carries, as OnParse
					// will judge it (bound.go).
					if bind, ok := m.bindFrom(off+1+l, string(name), false); ok {
						if text, why := boundText(judged, params, bind); why == "" {
							judged = text
						}
					}
				}
				if !m.judgeAhead(eng, string(query), judged) {
					return false
				}
				// judgeAhead may have waited, and the reader may have
				// moved what it holds: the same bytes, at the same offset.
				if body, err = m.conns.FromClient.Peek(off + 1 + l); err != nil {
					return true
				}
				name, rest, _ = wire.CStringBytes(body[off+5:])
				query, _, _ = wire.CStringBytes(rest)
			}
			notePrepared(&m.aheadPrepared, string(name), wire.BytesView(query))
			lastName, lastQuery = name, query
		default: // Sync, Flush (the client may wait for answers), anything else
			return true
		}
		off += 1 + l
	}
	return true
}

// runsAhead reports whether a statement of a migration's batch, executed
// before later ones, leaves the catalog's answers for them as they were
// before the batch as far as the statements after it in one Query are
// judged so (policy.Engine.DecideQuery): it reads or changes rows only
// (SELECT, INSERT, UPDATE, DELETE, MERGE, WITH, VALUES, TABLE), or is DDL
// that adds to the schema without changing what an existing name means or
// what runs with a statement on it (aheadDDL), and it cannot move the
// search_path or the role, after which a name may mean another table.
// Anything else stops the walk: the statements behind it are judged when
// they come, without the catalog (unestimable).
func runsAhead(query string) bool {
	if policy.MayChangeSearchPath(query) || changesLookup(query) {
		return false
	}
	for _, w := range []string{"select", "insert", "update", "delete", "merge", "with", "values", "table"} {
		if sqltext.FirstWordIs(query, w) {
			return sqltext.Classify(query) != sqltext.ClassDDL
		}
	}
	return sqltext.Classify(query) == sqltext.ClassDDL && aheadDDL(query)
}

// aheadDDL reports whether DDL leaves the catalog's answers about the
// statements after it as they were, but for what it adds, which they
// cannot have been asked about: CREATE TABLE, CREATE INDEX (not
// CONCURRENTLY, which a batch cannot run), CREATE SEQUENCE, COMMENT, and
// ALTER TABLE adding or changing columns, defaults and constraints. Not a
// rename, a DROP, CREATE OR REPLACE, a trigger, rule, function or view,
// ENABLE or DISABLE TRIGGER or RULE, ATTACH or DETACH PARTITION, INHERIT:
// after those a name may mean another relation, or other code may run
// with a statement, or other rows belong to a table.
func aheadDDL(query string) bool {
	tree, err := sqltext.PgParse(query)
	if err != nil || len(tree.Stmts) != 1 {
		return false
	}
	switch s := tree.Stmts[0].Stmt.GetNode().(type) {
	case *pg_query.Node_CreateStmt:
		return s.CreateStmt.InhRelations == nil && s.CreateStmt.Partbound == nil && s.CreateStmt.OfTypename == nil
	case *pg_query.Node_IndexStmt:
		return !s.IndexStmt.Concurrent
	case *pg_query.Node_CreateSeqStmt, *pg_query.Node_CommentStmt:
		return true
	case *pg_query.Node_AlterTableStmt:
		if s.AlterTableStmt.Objtype != pg_query.ObjectType_OBJECT_TABLE {
			return false
		}
		for _, c := range s.AlterTableStmt.Cmds {
			switch c.GetAlterTableCmd().GetSubtype() {
			case pg_query.AlterTableType_AT_AddColumn, pg_query.AlterTableType_AT_ColumnDefault,
				pg_query.AlterTableType_AT_DropNotNull, pg_query.AlterTableType_AT_SetNotNull,
				pg_query.AlterTableType_AT_AddConstraint, pg_query.AlterTableType_AT_ValidateConstraint,
				pg_query.AlterTableType_AT_AlterColumnType, pg_query.AlterTableType_AT_SetStatistics:
			default:
				return false
			}
		}
		return true
	}
	return false
}

// judgeAhead judges a later statement of the batch now, with the catalog
// as it is before the batch, and records the catalog's answers for its own
// judgement (of query, as judged: with its bound values, bound.go).
func (m *Machine) judgeAhead(eng *policy.Engine, query, judged string) bool {
	ctx := context.Background()
	stmt := sqltext.Statement{Text: judged, End: len(judged), Line: 1}
	judge := func(c policy.Catalog) policy.Decision {
		sc := m.policyContext(false)
		// As it is judged when it comes: behind other messages of its
		// batch, in a transaction (implicit, or the block BEGIN opened).
		sc.Alone, sc.InTransaction = false, true
		sc.Catalog, sc.Unestimable = c, ""
		return eng.Decide(ctx, stmt, sc)
	}
	m.probe.asked = false
	d := judge(&m.probe)
	// A statement that blocks writes, later in the batch, is looked for
	// now: once the batch's first message is sent, pgguard cannot ask
	// the server anything before it.
	look := time.Duration(eng.Config().LockQueue.Deadline) > 0 && len(wantsOf([]policy.StatementDecision{{Decision: d}})) > 0
	if !m.probe.asked && !look {
		return true
	}
	if m.pending.Load() > 0 && !m.waitIdle() {
		return false
	}
	if m.state.TxStatus() == 'E' {
		return true
	}
	w := &warmed{query: query, idle: sessionQuerier{m}.Idle(), version: m.state.ServerVersion(),
		answers: map[string]warmAnswer{}}
	if m.probe.asked {
		w.catalog = true
		d = judge(m.sessionCatalog(&pgcatalog.Catalog{Q: recordingQuerier{sessionQuerier{m}, w}}))
	}
	if ds := []policy.StatementDecision{{Statement: stmt, Decision: d}}; look && m.verdictOf(ds).reject == nil {
		v := m.verdictOf(ds)
		w.looked = true
		w.reject = m.lookBeforeQueue(v, ds)
		w.queueWait, w.queueBlocker = v.queueWait, v.queueBlocker
		select {
		case <-m.sess.Done():
			return false // the session ended while the statement waited
		default:
		}
	}
	m.warm = append(m.warm, w)
	return true
}

var _ policy.UserCodeCatalog = (*probeCatalog)(nil)

// UserCode (the code a statement before a DDL runs) needs the catalog.
func (p *probeCatalog) UserCode(context.Context, []policy.Table, []policy.Table) ([]policy.CodeFunction, bool) {
	p.asked = true
	return nil, false
}

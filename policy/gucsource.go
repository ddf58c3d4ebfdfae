package policy

import (
	"strings"
	"sync"

	pg_query "github.com/pganalyze/pg_query_go/v6"
	"github.com/pgguard/pgguard/policy/sqltext"
)

// SettingSource follows whether one setting (lock_timeout) has its value
// from a SET of the client's, so that pg_settings.source says 'session',
// the way PostgreSQL's guc.c keeps it: a SET inside a transaction counts
// only once the transaction commits; a ROLLBACK, a failed implicit
// transaction (a Query of several statements, an extended-protocol batch
// before its Sync) or a ROLLBACK TO a savepoint set before it undoes it;
// SET LOCAL lasts until the transaction ends; RESET, RESET ALL and
// DISCARD ALL give back the value the session started with, and its
// source. Like TxMemory it follows the transaction's savepoints, but
// outside transactions too and with the outcome of each: the stack of
// guc.c (push_old_value, AtEOXact_GUC) for one boolean.
//
// The proxy feeds it what each sync point's statements do (Ops) and how
// the sync point ended (Settle). Its methods are safe for concurrent use.
type SettingSource struct {
	mu        sync.Mutex
	committed bool // the source outside any transaction
	cur       bool // the source now
	// frames: the open transaction (frames[0]) and its savepoints,
	// innermost last; implicit: frames[0] is an implicit transaction.
	frames   []gucFrame
	implicit bool
	// failed: the transaction block failed; only ROLLBACK, ROLLBACK TO
	// and COMMIT (which rolls back) run in it.
	failed bool
}

// gucFrame is one nesting level of guc.c's stack: the value when the
// level began (prior), what the level did to the setting (state) and,
// after a SET then SET LOCAL, the SET's value (masked).
type gucFrame struct {
	name          string
	prior, masked bool
	state         gucState
}

type gucState uint8

const (
	gucNone gucState = iota
	gucSet
	gucLocal
	gucSetLocal
)

// GUCOpKind is what one statement does to a setting or its transaction.
type GUCOpKind uint8

// What statements do.
const (
	GUCNone       GUCOpKind = iota // nothing this model follows
	GUCSet                         // SET, or a statement that may set it (set_config, DO ...)
	GUCSetLocal                    // SET LOCAL
	GUCReset                       // RESET, SET ... TO DEFAULT
	GUCResetAll                    // RESET ALL, DISCARD ALL: a RESET of a setting the session SET, else nothing
	GUCResetLocal                  // SET LOCAL ... TO DEFAULT
	GUCBegin
	GUCCommit // COMMIT, END, PREPARE TRANSACTION
	GUCRollback
	GUCSavepoint
	GUCRelease
	GUCRollbackTo
)

// GUCOp is one statement's GUCOpKind, with the savepoint it names.
type GUCOp struct {
	Kind      GUCOpKind
	Savepoint string // as the server folds it
}

// Session reports whether the setting's source is a SET of the client's.
func (s *SettingSource) Session() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cur
}

// Clean reports whether nothing the open transaction did can change the
// source any more (no SET of it is pending in a transaction): until a
// statement names lock_timeout, the proxy need not tell the model about
// the session's statements.
func (s *SettingSource) Clean() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.clean()
}

// clean: every level's value is the one it began with. Savepoints then
// need no remembering: a ROLLBACK TO one the model does not know gives
// back the committed state (rollbackTo), as it would.
func (s *SettingSource) clean() bool {
	if s.cur != s.committed {
		return false
	}
	for _, f := range s.frames {
		if f.state != gucNone || f.prior != s.cur {
			return false
		}
	}
	return true
}

// Settle applies what a sync point's statements did, ops in their order,
// once it is answered: completed of them ran (CommandComplete), failed
// says one failed (the one after them), start and end are the
// transaction status before it and its ReadyForQuery's. A statement the
// ops do not list (a prepared statement run by a Bind alone, a sync point
// the model was not told of) is seen through the status: a transaction
// that ended without an error committed, one that ended with one rolled
// back.
func (s *SettingSource) Settle(ops []GUCOp, completed int, failed bool, start, end byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if start == 'I' && len(s.frames) > 0 {
		s.commit() // ended unseen
	}
	s.implicit, s.failed = false, start == 'E'
	for i := range ops {
		if failed && i >= completed {
			break
		}
		s.apply(&ops[i])
	}
	switch {
	case end == 'I':
		if len(s.frames) > 0 {
			if failed {
				s.rollback()
			} else {
				s.commit()
			}
		}
		s.failed = false
	case len(s.frames) == 0:
		// A block opened by a statement the ops do not list.
		s.frames = append(s.frames, gucFrame{prior: s.cur})
		fallthrough
	default:
		s.implicit = false
		s.failed = end == 'E'
	}
	if s.clean() {
		s.frames = s.frames[:0]
	}
}

// Reset forgets the session's transaction and what it set: a new session.
func (s *SettingSource) Reset() {
	s.mu.Lock()
	s.committed, s.cur, s.frames, s.implicit, s.failed = false, false, s.frames[:0], false, false
	s.mu.Unlock()
}

func (s *SettingSource) apply(op *GUCOp) {
	if s.failed {
		switch op.Kind {
		case GUCCommit, GUCRollback:
			if len(s.frames) > 0 {
				s.rollback()
			}
			s.failed = false
		case GUCRollbackTo:
			s.rollbackTo(op.Savepoint)
		}
		return
	}
	switch op.Kind {
	case GUCNone:
	case GUCBegin:
		s.top()
		s.implicit = false
	case GUCCommit:
		if len(s.frames) > 0 {
			s.commit()
		}
	case GUCRollback:
		if len(s.frames) > 0 {
			s.rollback()
		}
	case GUCSavepoint:
		s.top()
		s.frames = append(s.frames, gucFrame{name: op.Savepoint, prior: s.cur})
	case GUCRelease:
		i := s.find(op.Savepoint)
		if i < 0 {
			return // set before the model followed the block: nothing to merge
		}
		for len(s.frames) > i {
			s.merge()
		}
	case GUCRollbackTo:
		s.rollbackTo(op.Savepoint)
	case GUCResetAll:
		// ResetAllOptions leaves alone (pushes nothing for) a setting
		// whose source is not the session's.
		if !s.cur {
			return
		}
		fallthrough
	case GUCSet, GUCReset:
		s.top()
		f := &s.frames[len(s.frames)-1]
		f.state, f.masked = gucSet, false
		s.cur = op.Kind == GUCSet
	case GUCSetLocal, GUCResetLocal:
		s.top()
		f := &s.frames[len(s.frames)-1]
		switch f.state {
		case gucSet:
			f.state, f.masked = gucSetLocal, s.cur
		case gucNone:
			f.state = gucLocal
		}
		s.cur = op.Kind == GUCSetLocal
	}
}

// top opens the implicit transaction a statement outside a block runs in.
func (s *SettingSource) top() {
	if len(s.frames) == 0 {
		s.frames, s.implicit = append(s.frames, gucFrame{prior: s.cur}), true
	}
}

func (s *SettingSource) find(name string) int {
	for i := len(s.frames) - 1; i >= 1; i-- {
		if s.frames[i].name == name {
			return i
		}
	}
	return -1
}

// merge ends the innermost savepoint as guc.c does at a subtransaction's
// commit (RELEASE): what it did moves to the level below.
func (s *SettingSource) merge() {
	n := len(s.frames)
	c, p := s.frames[n-1], &s.frames[n-2]
	s.frames = s.frames[:n-1]
	switch c.state {
	case gucSet:
		p.state, p.masked = gucSet, false
	case gucLocal:
		switch p.state {
		case gucSet:
			p.state, p.masked = gucSetLocal, c.prior
		case gucNone:
			p.state = gucLocal
		}
	case gucSetLocal:
		p.state, p.masked = gucSetLocal, c.masked
	}
}

// commit ends the transaction as guc.c does at commit: a SET stays, a SET
// LOCAL goes back to the value before it, or to the SET (or RESET) it
// masked, whose source is then 'session' either way.
func (s *SettingSource) commit() {
	for len(s.frames) > 1 {
		s.merge()
	}
	switch f := s.frames[0]; f.state {
	case gucLocal:
		s.cur = f.prior
	case gucSetLocal:
		// guc.c puts the masked SET's value back with source
		// PGC_S_SESSION, even when that SET was a RESET.
		s.cur = true
	}
	s.committed = s.cur
	s.frames, s.implicit, s.failed = s.frames[:0], false, false
}

// rollback ends the transaction undoing everything it did.
func (s *SettingSource) rollback() {
	s.cur = s.frames[0].prior
	s.committed = s.cur
	s.frames, s.implicit, s.failed = s.frames[:0], false, false
}

// rollbackTo undoes what was done since savepoint name, which stays. A
// savepoint the model did not see set was set while it followed nothing
// (Clean): rolling back to it gives back that state.
func (s *SettingSource) rollbackTo(name string) {
	s.failed = false
	i := s.find(name)
	if i < 0 {
		if len(s.frames) == 0 {
			return // no block: the server refuses it
		}
		s.cur = s.committed
		s.frames = append(s.frames[:0], gucFrame{prior: s.committed}, gucFrame{name: name, prior: s.committed})
		return
	}
	s.cur = s.frames[i].prior
	s.frames = append(s.frames[:i], gucFrame{name: name, prior: s.cur})
}

// MentionsLockTimeout reports, without a parse, whether a Query or Parse
// may change lock_timeout or its source: it names lock_timeout,
// set_config, pg_settings or a Unicode-escaped name or, with set (the
// source is the session's now), may hold a RESET ALL or DISCARD ALL.
func MentionsLockTimeout(text string, set bool) bool {
	if strings.ContainsAny(text, "_&") {
		for _, w := range []string{"lock_timeout", "set_config", "pg_settings", "u&"} {
			if sqltext.ContainsFold(text, w) {
				return true
			}
		}
	}
	return set && (sqltext.ContainsFold(text, "reset") || sqltext.ContainsFold(text, "discard"))
}

// LockTimeoutOps lists what each statement of a Query string (or of one
// Parse) does to lock_timeout's source and to the transaction, in order,
// one op per statement as Split finds them.
func LockTimeoutOps(query string) []GUCOp {
	stmts := sqltext.Split(query)
	out := make([]GUCOp, 0, len(stmts))
	for _, st := range stmts {
		out = append(out, lockTimeoutOp(st.Text))
	}
	return out
}

// lockTimeoutOp is one statement's op. A statement that names what could
// set lock_timeout (set_config, pg_settings, a DO block or CALL that names
// it) but is no SET of it counts as a SET: a RESET in its place would put
// back another value, where a SET leaves only the source to differ. One
// that names it without setting it (SHOW, CREATE FUNCTION ... SET
// lock_timeout, whose SET is undone as the function returns, a SELECT of
// current_setting) does nothing.
func lockTimeoutOp(text string) GUCOp {
	quick := sqltext.FirstWordIs(text, "begin") || sqltext.FirstWordIs(text, "start") || sqltext.FirstWordIs(text, "commit") ||
		sqltext.FirstWordIs(text, "end") || sqltext.FirstWordIs(text, "rollback") || sqltext.FirstWordIs(text, "abort") ||
		sqltext.FirstWordIs(text, "savepoint") || sqltext.FirstWordIs(text, "release") || sqltext.FirstWordIs(text, "prepare")
	if !quick && !MentionsLockTimeout(text, true) {
		return GUCOp{}
	}
	res, err := sqltext.PgParse(text)
	if err != nil || len(res.Stmts) != 1 {
		if MentionsLockTimeout(text, false) {
			return GUCOp{Kind: GUCSet}
		}
		return GUCOp{}
	}
	n := res.Stmts[0].Stmt
	if ts := n.GetTransactionStmt(); ts != nil {
		switch ts.Kind {
		case pg_query.TransactionStmtKind_TRANS_STMT_BEGIN, pg_query.TransactionStmtKind_TRANS_STMT_START:
			return GUCOp{Kind: GUCBegin}
		case pg_query.TransactionStmtKind_TRANS_STMT_COMMIT, pg_query.TransactionStmtKind_TRANS_STMT_PREPARE:
			return GUCOp{Kind: GUCCommit}
		case pg_query.TransactionStmtKind_TRANS_STMT_ROLLBACK:
			return GUCOp{Kind: GUCRollback}
		case pg_query.TransactionStmtKind_TRANS_STMT_SAVEPOINT:
			return GUCOp{Kind: GUCSavepoint, Savepoint: ts.SavepointName}
		case pg_query.TransactionStmtKind_TRANS_STMT_RELEASE:
			return GUCOp{Kind: GUCRelease, Savepoint: ts.SavepointName}
		case pg_query.TransactionStmtKind_TRANS_STMT_ROLLBACK_TO:
			return GUCOp{Kind: GUCRollbackTo, Savepoint: ts.SavepointName}
		}
		return GUCOp{}
	}
	if vs := n.GetVariableSetStmt(); vs != nil {
		switch {
		case vs.Kind == pg_query.VariableSetKind_VAR_RESET_ALL:
			return GUCOp{Kind: GUCResetAll}
		case !strings.EqualFold(vs.Name, "lock_timeout"):
			return GUCOp{}
		case vs.Kind == pg_query.VariableSetKind_VAR_SET_DEFAULT || vs.Kind == pg_query.VariableSetKind_VAR_RESET:
			if vs.IsLocal {
				return GUCOp{Kind: GUCResetLocal}
			}
			return GUCOp{Kind: GUCReset}
		case vs.IsLocal:
			return GUCOp{Kind: GUCSetLocal}
		}
		return GUCOp{Kind: GUCSet}
	}
	if d := n.GetDiscardStmt(); d != nil {
		if d.Target == pg_query.DiscardMode_DISCARD_ALL {
			return GUCOp{Kind: GUCResetAll}
		}
		return GUCOp{}
	}
	switch {
	case n.GetVariableShowStmt() != nil, n.GetCreateFunctionStmt() != nil && !sqltext.ContainsFold(text, "set_config") && !sqltext.ContainsFold(text, "pg_settings"):
		return GUCOp{}
	case n.GetSelectStmt() != nil && !sqltext.ContainsFold(text, "set_config") && !sqltext.ContainsFold(text, "pg_settings"):
		return GUCOp{}
	case !MentionsLockTimeout(text, false):
		return GUCOp{} // PREPARE name AS ..., BEGIN ATOMIC: named by a word only
	}
	return GUCOp{Kind: GUCSet}
}

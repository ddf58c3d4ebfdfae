package enforce

import (
	"fmt"
	"strings"
	"time"

	"github.com/pgguard/pgguard/policy"
	"github.com/pgguard/pgguard/policy/sqltext"

	"github.com/pgguard/pgguard/internal/pgcatalog"
	"github.com/pgguard/pgguard/internal/wire"
)

// The lock_timeout guarantee does not depend on reading SQL the way the
// server does: right before a statement that blocks writes is sent,
// pgguard asks the server for the session's effective lock_timeout and,
// when it is off or above the allowed maximum, sets it back to the
// policy's value, telling the client with a WARNING. However the value was
// set (any spelling of SET, set_config with bound parameters, UPDATE
// pg_settings, a function, the startup packet), the server's answer is
// what counts. A statement that may change lock_timeout earlier in the same
// Query or batch would change it after that check, so such a pair is
// refused.

// blocksWrites reports whether a decision's statement takes a lock that
// blocks writes (SHARE or stronger) on its main table or on another it
// names (the table a FOREIGN KEY references: CREATE TABLE ... REFERENCES
// takes SHARE ROW EXCLUSIVE there), and is not a CONCURRENTLY operation.
func blocksWrites(d policy.Decision) bool {
	if d.Concurrent {
		return false
	}
	if policy.BlocksWrites(d.Lock) {
		return true
	}
	for _, tl := range d.TableLocks {
		if policy.BlocksWrites(tl.Mode) {
			return true
		}
	}
	return false
}

// refuseForLocks refuses v, when nothing else did, if a statement before
// one that blocks writes may change lock_timeout after pgguard's check
// (lockTimeoutOrder), or, with look, if a long holder of a lock is still in
// its way at lock_queue.deadline (lookBeforeQueue).
func (m *Machine) refuseForLocks(v *verdict, ds []policy.StatementDecision, look bool) {
	if v.reject != nil {
		return
	}
	f := lockTimeoutOrder(ds, m.batchChangesLockTimeout, time.Duration(m.cfg.Policy.Engine().Config().MaxLockTimeout))
	if f == nil && look {
		f = m.lookBeforeQueue(v, ds)
	}
	if f != nil {
		v.reject, v.rejects = f, []policy.Finding{*f}
	}
}

// lockTimeoutOrder refuses a statement that blocks writes when a statement
// before it in the same Query (or, with earlier, in the same batch) may
// change lock_timeout, or sets it above max (a plain SET, which the rule
// lock-timeout judges only under lock_timeout_scope session), or runs
// code that may (Decision.ChangesLockTimeout: a function it calls, a
// view's, a trigger's, a DEFAULT's); and one whose own locks are taken
// by code it calls that may change lock_timeout first.
func lockTimeoutOrder(ds []policy.StatementDecision, earlier bool, max time.Duration) *policy.Finding {
	changed := earlier
	code := "" // how user code before it may change it
	for _, sd := range ds {
		own := sd.Decision.ChangesLockTimeout != "" && sqltext.Classify(sd.Statement.Text) != sqltext.ClassDDL
		if blocksWrites(sd.Decision) && own && !changed {
			return &policy.Finding{RuleID: "lock-timeout", Action: policy.Reject, Lock: sd.Decision.Lock,
				Message: "a statement whose called code takes locks that block writes may change lock_timeout before it takes them",
				Detail: "pgguard sets lock_timeout before the statement; code it runs may change it as it runs (" + sd.Decision.ChangesLockTimeout +
					"), and the locks it then takes would wait with no limit.",
				Hint: "-- run the DDL as statements of their own, or give the function a SET lock_timeout clause: ALTER FUNCTION ... SET lock_timeout = '3s'",
			}
		}
		if changed && blocksWrites(sd.Decision) {
			f := &policy.Finding{RuleID: "lock-timeout", Action: policy.Reject, Lock: sd.Decision.Lock,
				Message: "a statement that may change lock_timeout comes before a statement that blocks writes, in the same Query or batch",
				Detail: "pgguard checks the session's lock_timeout with the server right before each statement that blocks writes; " +
					"a SET, set_config, DO block or CALL earlier in the same Query or extended-protocol batch would change it after that check.",
				Hint: "-- send them separately: first the setting, then the DDL in a Query (or batch) of its own",
			}
			if code != "" {
				f.Detail = "pgguard sets lock_timeout before the Query; a statement before the DDL in it may change it as it runs: " + code +
					". The DDL would then wait for its lock with no limit, and every later query on its table behind it."
				f.Hint = "-- run the DDL in a Query of its own, after the statements before it"
			}
			return f
		}
		if sd.Decision.ChangesLockTimeout != "" && code == "" {
			changed, code = true, sd.Decision.ChangesLockTimeout
		}
		changed = changed || policy.MayChangeLockTimeout(sd.Statement.Text)
		if d, ok := policy.PlainLockTimeout(sd.Statement.Text); ok && max > 0 && d > max {
			changed = true
		}
	}
	return nil
}

// checkLockTimeout runs before a statement of ds, which v answers, that
// blocks writes is sent, when the session can run a query of pgguard's own
// (nothing pending, no batch open, not in a failed transaction). It asks
// the server for the session's lock_timeout: with SHOW, which takes no
// snapshot, opens no cursor and uses no command id, before LOCK TABLE in a
// transaction block (the first statement of a REPEATABLE READ transaction
// that reads after it); elsewhere from pg_settings, with its source. In
// mode warn or audit it does nothing. When the value is off or above the
// maximum:
//
//   - scope session: it sets it back to the policy's for the rest of the
//     session and adds the WARNING that tells the client so to v;
//   - scope ddl: it sets the policy's for this statement alone and puts in
//     v.restore the SQL that puts the session's own back once the
//     statement is answered (endImposed): RESET when the value came from
//     anywhere but a SET of the session that still counts (asked with
//     SHOW, ltFollow says), else SET to it. Outside a block
//     both are session-level SETs: the Query itself may open a
//     transaction block (BEGIN; ALTER ...). Inside one, when nothing in
//     the Query before the statement may end the block or a savepoint,
//     they are SET LOCALs: a session-level SET there would turn the
//     client's SET LOCAL (or nothing) at that level into a SET that
//     outlives the block, and its COMMIT would keep the value put back
//     in place of the session's own. Otherwise (COMMIT; ALTER ...) they
//     are SETs, transactional like any other; endImposed puts the value
//     back once more when the session is next idle, whatever the block
//     did.
func (m *Machine) checkLockTimeout(v *verdict, ds []policy.StatementDecision) error {
	eng := m.cfg.Policy.Engine()
	cfg := eng.Config()
	def, max := time.Duration(cfg.LockTimeout), time.Duration(cfg.MaxLockTimeout)
	status := m.state.TxStatus()
	if def <= 0 || m.unsynced || m.batch != nil || m.pending.Load() > 0 || status == 'E' {
		return nil
	}
	if eng.ModeFor(&m.pctx) != policy.ModeEnforce {
		// In mode warn or audit pgguard changes nothing the client sent,
		// the lock_timeout its statements run with included.
		return nil
	}
	lock := ""
	for _, sd := range ds {
		if blocksWrites(sd.Decision) {
			lock = sd.Decision.Lock
			for _, tl := range sd.Decision.TableLocks {
				if policy.LockStrength(tl.Mode) > policy.LockStrength(lock) {
					lock = tl.Mode
				}
			}
		}
	}
	if lock == "" {
		return nil
	}
	if max <= 0 {
		max = def
	}
	scope := cfg.LockTimeoutScope
	ask := "SHOW lock_timeout"
	if scope == policy.ScopeDDL && (status == 'I' || !anySnapshotFree(ds)) {
		// Outside a transaction block the query has a transaction of its
		// own, and inside one the statement takes its snapshot as it
		// starts, so a snapshot taken a moment before is invisible; only
		// before LOCK TABLE (which takes none) is SHOW all there is. The
		// source says how to put the value back.
		ask = "SELECT pg_catalog.current_setting('lock_timeout'), source FROM pg_catalog.pg_settings WHERE name = 'lock_timeout'"
	}
	out, err := m.internalQuery(ask)
	if err != nil || out.errCode != "" || len(out.rows) != 1 || len(out.rows[0]) == 0 || out.rows[0][0] == nil {
		return err
	}
	was := *out.rows[0][0]
	if d, perr := policy.ParseLockTimeout(was); perr == nil && d > 0 && d <= max {
		return nil
	}
	set := fmt.Sprintf("SET lock_timeout = '%dms'", def.Milliseconds())
	local := scope == policy.ScopeDDL && status == 'T' && sameLevelUpToWrites(ds)
	if local {
		// Inside a block a session-level SET would turn whatever the
		// client did at this level (a SET LOCAL, or nothing) into a SET
		// that outlives the block: its COMMIT would keep the value put
		// back in place of the session's own. SET LOCAL, and SET LOCAL
		// to put the value back, leave the end of the block (and of a
		// savepoint) to do what it would have done without pgguard.
		set = fmt.Sprintf("SET LOCAL lock_timeout = '%dms'", def.Milliseconds())
	}
	if res, err := m.internalQuery(set); err != nil || res.errCode != "" {
		return err
	}
	if scope == policy.ScopeDDL {
		v.restore, v.restoreFrom = "SET lock_timeout = "+pgcatalog.QuoteLiteral(was), status
		switch {
		case len(out.rows[0]) == 2 && out.rows[0][1] != nil && *out.rows[0][1] != "session":
			// No SET (LOCAL) of the session at any level: RESET gives the
			// value and its source back, and as a SET of the value the
			// block would end with anyway, it is right inside one too.
			v.restore = "RESET lock_timeout"
		case len(out.rows[0]) == 1 && !m.lt.src.Session():
			// Asked with SHOW (before LOCK TABLE in a block), which gives
			// no source: nothing of the client's that still counts set
			// it (a SET rolled back, refused or never run does not:
			// ltFollow), so it is the value the session started with,
			// which RESET gives back with its source; a SET would leave
			// source 'session' (found by the wire harness: BEGIN
			// ISOLATION LEVEL REPEATABLE READ; LOCK TABLE ...).
			v.restore = "RESET lock_timeout"
		case local:
			v.restore = restoreLocal + pgcatalog.QuoteLiteral(was)
		}
		return nil
	}
	m.log.Warn("lock_timeout was off or above the maximum before a statement that blocks writes; set back", "set", def.String())
	n := &wire.PGError{Severity: "WARNING", Code: "01000",
		Message: fmt.Sprintf("pgguard: lock-timeout: this session's lock_timeout was %s; pgguard set it back to %s before this statement, which takes a %s lock", was, def, lock),
		Detail:  fmt.Sprintf("pgguard gives every session lock_timeout=%s; a client may lower it, but not turn it off or raise it above %s.", def, max),
	}
	v.notices = append(v.notices, n.Encode(nil, true))
	return nil
}

// endImposed waits for the answer of a statement that ran with the policy's
// lock_timeout in place of the session's (checkLockTimeout), puts the
// session's back, and only then sends the client the ReadyForQuery held
// back, so that nothing of the client's runs with pgguard's value. Left in
// a transaction block, the restore is transactional: a ROLLBACK (or
// ROLLBACK TO a savepoint set after pgguard's SET) would undo it, and a
// failed block cannot run it at all. So the session also owes it to its
// next idle moment (restoreOwed, payRestore); running it twice is harmless.
func (m *Machine) endImposed(sp *syncPoint, v *verdict, alone bool) error {
	out, clientLeft := m.awaitOutcome(sp, true)
	if out.closed {
		return errSessionClosed
	}
	if out.status != 'E' {
		if err := m.putBack(v.restore); err != nil {
			return err
		}
	}
	// One statement in a block that was open before it leaves the SET and
	// the restore at the same level, which the block's end or a ROLLBACK
	// TO undoes together; a Query of several (BEGIN; ALTER ...; SAVEPOINT
	// s; ...) may not.
	if out.status != 'I' && (v.restoreFrom == 'I' || !alone) {
		m.restoreOwed = v.restore
	}
	if clientLeft {
		return ErrClientLeft
	}
	if out.skipped {
		// The server skipped the sync message the answer was held for
		// (behind a failed batch): it sent no ReadyForQuery, nor may we.
		return nil
	}
	m.conns.ToClientMu.Lock()
	defer m.conns.ToClientMu.Unlock()
	wire.WriteMessage(m.conns.ToClient, wire.ServerReadyForQuery, []byte{out.status})
	return m.conns.ToClient.Flush()
}

// sameLevelUpToWrites reports whether no statement of ds before the last
// that blocks writes may end the transaction block or a savepoint level
// (a transaction statement, or one that does not parse), so that a SET
// LOCAL before ds still holds for that statement.
func sameLevelUpToWrites(ds []policy.StatementDecision) bool {
	last := -1
	for i, sd := range ds {
		if blocksWrites(sd.Decision) {
			last = i
		}
	}
	for _, sd := range ds[:max(last, 0)] {
		res, err := sqltext.PgParse(sd.Statement.Text)
		if err != nil {
			return false
		}
		for _, st := range res.Stmts {
			if st.Stmt.GetTransactionStmt() != nil || st.Stmt.GetDoStmt() != nil || st.Stmt.GetCallStmt() != nil {
				return false
			}
		}
	}
	return true
}

// restoreLocal starts the restore of a value pgguard set with SET LOCAL.
const restoreLocal = "SET LOCAL lock_timeout = "

// anySnapshotFree reports whether a statement of ds takes no snapshot of
// its own (LOCK TABLE).
func anySnapshotFree(ds []policy.StatementDecision) bool {
	for _, sd := range ds {
		if snapshotFree(sd.Statement.Text) {
			return true
		}
	}
	return false
}

// payRestore puts back the session's lock_timeout that endImposed could
// not be sure of, once the session is idle again: before the next
// statement the client sends (OnQuery and OnParse call it first; the event
// loop leaves a session that owes one to them).
func (m *Machine) payRestore() error {
	status := m.state.TxStatus()
	if m.restoreOwed == "" || m.pending.Load() > 0 || m.unsynced || m.batch != nil || status == 'E' {
		return nil
	}
	err := m.putBack(m.restoreOwed)
	if status == 'I' {
		// Inside the block it is paid before each statement whenever the
		// value is pgguard's, since a ROLLBACK (TO) may bring it back;
		// once idle it is settled.
		m.restoreOwed = ""
	}
	return err
}

// putBack runs restore when lock_timeout is still the policy's, which
// pgguard set: a value the client set since (SET lock_timeout = '2s' later
// in the same Query or batch) is the session's, as it would be without
// pgguard. It asks with SHOW, which takes no snapshot.
func (m *Machine) putBack(restore string) error {
	if strings.HasPrefix(restore, restoreLocal) && m.state.TxStatus() == 'I' {
		// pgguard's SET LOCAL ended with the block.
		return nil
	}
	def := time.Duration(m.cfg.Policy.Engine().Config().LockTimeout)
	now, err := m.internalQuery("SHOW lock_timeout")
	if err != nil || now.errCode != "" || len(now.rows) != 1 || len(now.rows[0]) != 1 || now.rows[0][0] == nil {
		return err
	}
	if d, perr := policy.ParseLockTimeout(*now.rows[0][0]); perr != nil || d != def {
		return nil
	}
	_, err = m.internalQuery(restore)
	return err
}

// containsFold reports whether s contains the lower-case ASCII word w in
// any case.
func containsFold(s, w string) bool {
	for i := 0; i+len(w) <= len(s); i++ {
		if strings.EqualFold(s[i:i+len(w)], w) {
			return true
		}
	}
	return false
}

package enforce

import (
	"fmt"
	"time"

	"github.com/pgguard/pgguard/policy"

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
// blocks writes (SHARE or stronger) and is not a CONCURRENTLY operation.
func blocksWrites(d policy.Decision) bool {
	return !d.Concurrent && policy.BlocksWrites(d.Lock)
}

// lockTimeoutOrder refuses a statement that blocks writes when a statement
// before it in the same Query (or, with earlier, in the same batch) may
// change lock_timeout.
func lockTimeoutOrder(ds []policy.StatementDecision, earlier bool) *policy.Finding {
	changed := earlier
	for _, sd := range ds {
		if changed && blocksWrites(sd.Decision) {
			return &policy.Finding{RuleID: "lock-timeout", Action: policy.Reject, Lock: sd.Decision.Lock,
				Message: "a statement that may change lock_timeout comes before a statement that blocks writes, in the same Query or batch",
				Detail: "pgguard checks the session's lock_timeout with the server right before each statement that blocks writes; " +
					"a SET, set_config, DO block or CALL earlier in the same Query or extended-protocol batch would change it after that check.",
				Hint: "-- send them separately: first the setting, then the DDL in a Query (or batch) of its own",
			}
		}
		changed = changed || policy.MayChangeLockTimeout(sd.Statement.Text)
	}
	return nil
}

// checkLockTimeout runs before a statement of ds that blocks writes is
// sent, when the session can run a query of pgguard's own (nothing
// pending, no batch open, not in a failed transaction). It asks the server
// for the session's lock_timeout with SHOW, which takes no snapshot, opens
// no cursor and uses no command id, so that it is invisible even as the
// first statement of a REPEATABLE READ transaction (LOCK TABLE, then read).
// When the value is off or above the maximum:
//
//   - scope session: it sets it back to the policy's for the rest of the
//     session and returns the WARNING that tells the client so;
//   - scope ddl: it sets the policy's for this statement alone and returns
//     the SQL that puts the session's own back once the statement is
//     answered (restore): SET LOCAL inside a transaction block, which the
//     block's end undoes in any case; outside one, RESET when the value
//     came from anywhere but a SET of the session, else SET to it.
func (m *Machine) checkLockTimeout(ds []policy.StatementDecision) (warning []byte, restore string, err error) {
	cfg := m.cfg.Policy.Engine().Config()
	def, max := time.Duration(cfg.LockTimeout), time.Duration(cfg.MaxLockTimeout)
	status := m.state.TxStatus()
	if def <= 0 || m.unsynced || m.batch != nil || m.pending.Load() > 0 || status == 'E' {
		return nil, "", nil
	}
	lock := ""
	for _, sd := range ds {
		if blocksWrites(sd.Decision) {
			lock = sd.Decision.Lock
		}
	}
	if lock == "" {
		return nil, "", nil
	}
	if max <= 0 {
		max = def
	}
	scope := cfg.LockTimeoutScope
	ask := "SHOW lock_timeout"
	if scope == policy.ScopeDDL && status == 'I' {
		// Outside a transaction block the query has a transaction of its
		// own, so a snapshot does not matter; the source says how to put
		// the value back.
		ask = "SELECT pg_catalog.current_setting('lock_timeout'), source FROM pg_catalog.pg_settings WHERE name = 'lock_timeout'"
	}
	out, err := m.internalQuery(ask)
	if err != nil || out.errCode != "" || len(out.rows) != 1 || len(out.rows[0]) == 0 || out.rows[0][0] == nil {
		return nil, "", err
	}
	was := *out.rows[0][0]
	if d, perr := policy.ParseLockTimeout(was); perr == nil && d > 0 && d <= max {
		return nil, "", nil
	}
	set := fmt.Sprintf("SET lock_timeout = '%dms'", def.Milliseconds())
	if scope == policy.ScopeDDL {
		switch {
		case status == 'T':
			set = fmt.Sprintf("SET LOCAL lock_timeout = '%dms'", def.Milliseconds())
			restore = "SET LOCAL lock_timeout = " + pgcatalog.QuoteLiteral(was)
		case len(out.rows[0]) == 2 && out.rows[0][1] != nil && *out.rows[0][1] != "session":
			restore = "RESET lock_timeout"
		default:
			restore = "SET lock_timeout = " + pgcatalog.QuoteLiteral(was)
		}
	}
	if res, err := m.internalQuery(set); err != nil || res.errCode != "" {
		return nil, "", err
	}
	if scope == policy.ScopeDDL {
		return nil, restore, nil
	}
	m.log.Warn("lock_timeout was off or above the maximum before a statement that blocks writes; set back", "set", def.String())
	n := &wire.PGError{Severity: "WARNING", Code: "01000",
		Message: fmt.Sprintf("pgguard: lock-timeout: this session's lock_timeout was %s; pgguard set it back to %s before this statement, which takes a %s lock", was, def, lock),
		Detail:  fmt.Sprintf("pgguard gives every session lock_timeout=%s; a client may lower it, but not turn it off or raise it above %s.", def, max),
	}
	return n.Encode(nil, true), "", nil
}

// endImposed waits for the answer of a statement that ran with the policy's
// lock_timeout in place of the session's (checkLockTimeout), puts the
// session's back, and only then sends the client the ReadyForQuery held
// back, so that nothing of the client's runs with pgguard's value. A
// statement that failed inside a transaction block needs no restore: the
// block's end undoes SET LOCAL. One that left a failed block opened by its
// own Query owes the restore to the session's next idle moment
// (restoreOwed): the failed block cannot run it.
func (m *Machine) endImposed(sp *syncPoint, restore string, inBlock bool) error {
	out, clientLeft := m.awaitOutcome(sp, true)
	if out.closed {
		return errSessionClosed
	}
	switch {
	case out.status != 'E':
		if _, err := m.internalQuery(restore); err != nil {
			return err
		}
	case !inBlock:
		m.restoreOwed = restore
	}
	if clientLeft {
		return ErrClientLeft
	}
	m.conns.ToClientMu.Lock()
	defer m.conns.ToClientMu.Unlock()
	wire.WriteMessage(m.conns.ToClient, wire.ServerReadyForQuery, []byte{out.status})
	return m.conns.ToClient.Flush()
}

// payRestore puts back the session's lock_timeout that a statement left
// in a failed transaction block could not (endImposed), once the session
// is idle again.
func (m *Machine) payRestore() error {
	if m.restoreOwed == "" || m.pending.Load() > 0 || m.unsynced || m.batch != nil || m.state.TxStatus() != 'I' {
		return nil
	}
	restore := m.restoreOwed
	m.restoreOwed = ""
	_, err := m.internalQuery(restore)
	return err
}

package enforce

import (
	"fmt"
	"time"

	"github.com/pgguard/pgguard/policy"

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

// clampSQL returns lock_timeout as it is and, when it is off or above max,
// sets it to def for the rest of the session.
func clampSQL(def, max time.Duration) string {
	return fmt.Sprintf("SELECT pg_catalog.current_setting('lock_timeout'), "+
		"CASE WHEN t = interval '0' OR t > interval '%d milliseconds' THEN pg_catalog.set_config('lock_timeout', '%dms', false) END "+
		"FROM (SELECT pg_catalog.current_setting('lock_timeout')::interval AS t) s", max.Milliseconds(), def.Milliseconds())
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

// clampLockTimeout runs before a statement of ds that blocks writes is
// sent, when the session can run a query of pgguard's own (nothing
// pending, no batch open, not in a failed transaction). It returns the
// WARNING to send the client when it had to set lock_timeout back.
func (m *Machine) clampLockTimeout(ds []policy.StatementDecision) ([]byte, error) {
	cfg := m.cfg.Policy.Engine().Config()
	def, max := time.Duration(cfg.LockTimeout), time.Duration(cfg.MaxLockTimeout)
	if def <= 0 || m.unsynced || m.batch != nil || m.pending.Load() > 0 || m.state.TxStatus() == 'E' {
		return nil, nil
	}
	lock := ""
	for _, sd := range ds {
		if blocksWrites(sd.Decision) {
			lock = sd.Decision.Lock
		}
	}
	if lock == "" {
		return nil, nil
	}
	if max <= 0 {
		max = def
	}
	out, err := m.internalQuery(clampSQL(def, max))
	if err != nil || len(out.rows) != 1 || len(out.rows[0]) != 2 || out.rows[0][1] == nil {
		return nil, err
	}
	was := "?"
	if out.rows[0][0] != nil {
		was = *out.rows[0][0]
	}
	m.log.Warn("lock_timeout was off or above the maximum before a statement that blocks writes; set back", "set", def.String())
	n := &wire.PGError{Severity: "WARNING", Code: "01000",
		Message: fmt.Sprintf("pgguard: lock-timeout: this session's lock_timeout was %s; pgguard set it back to %s before this statement, which takes a %s lock", was, def, lock),
		Detail:  fmt.Sprintf("pgguard gives every session lock_timeout=%s; a client may lower it, but not turn it off or raise it above %s.", def, max),
	}
	return n.Encode(nil, true), nil
}

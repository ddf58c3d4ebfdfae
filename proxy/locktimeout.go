package proxy

import (
	"fmt"
	"strings"
	"time"

	"github.com/pgguard/pgguard/policy"

	"github.com/pgguard/pgguard/internal/wire"
)

// applyLockTimeout gives the session the policy's lock_timeout as a startup
// parameter: no extra round trip, and it becomes the session default that
// RESET returns to. A client may ask for a lower value in the startup
// message (as a parameter or in options), but not for 0 or more than the
// allowed maximum.
func (s *Session) applyLockTimeout(st *Startup) *wire.PGError {
	cfg := s.srv.cfg.Policy.Engine().Config()
	def, max := time.Duration(cfg.LockTimeout), time.Duration(cfg.MaxLockTimeout)
	if def <= 0 {
		return nil
	}
	refuse := func(where, value string) *wire.PGError {
		return &wire.PGError{Severity: "FATAL", Code: wire.CodeInsufficientPrivilege,
			Message: fmt.Sprintf("pgguard: lock_timeout=%s in the startup %s is not allowed", value, where),
			Detail:  fmt.Sprintf("pgguard gives every session lock_timeout=%s; a client may lower it, but not turn it off or raise it above %s.", def, max),
			Hint:    "Remove lock_timeout from the connection settings, or set it between 1ms and " + max.String() + ".",
		}
	}
	check := func(where, value string) *wire.PGError {
		d, err := policy.ParseLockTimeout(value)
		if err != nil || d <= 0 || (max > 0 && d > max) {
			return refuse(where, value)
		}
		return nil
	}
	if v, ok := startupParam(st, "lock_timeout"); ok {
		if e := check("parameters", v); e != nil {
			return e
		}
		return nil
	}
	if v, ok := optionsSetting(st.Get("options"), "lock_timeout"); ok {
		return check("options", v)
	}
	st.Set("lock_timeout", fmt.Sprintf("%dms", def.Milliseconds()))
	return nil
}

func startupParam(st *Startup, name string) (string, bool) {
	for _, p := range st.Params {
		if p.Name == name {
			return p.Value, true
		}
	}
	return "", false
}

// optionsSetting finds "-c name=value" or "--name=value" in a startup
// options string (words separated by spaces, backslash escapes a space).
// The last occurrence wins, as in PostgreSQL.
func optionsSetting(options, name string) (string, bool) {
	var words []string
	var cur strings.Builder
	for i := 0; i < len(options); i++ {
		c := options[i]
		switch {
		case c == '\\' && i+1 < len(options):
			i++
			cur.WriteByte(options[i])
		case c == ' ' || c == '\t' || c == '\n':
			if cur.Len() > 0 {
				words = append(words, cur.String())
				cur.Reset()
			}
		default:
			cur.WriteByte(c)
		}
	}
	if cur.Len() > 0 {
		words = append(words, cur.String())
	}
	value, found := "", false
	for i, w := range words {
		var kv string
		switch {
		case w == "-c" && i+1 < len(words):
			kv = words[i+1]
		case strings.HasPrefix(w, "-c") && len(w) > 2:
			kv = w[2:]
		case strings.HasPrefix(w, "--"):
			kv = w[2:]
		default:
			continue
		}
		k, v, ok := strings.Cut(kv, "=")
		if ok && strings.ReplaceAll(strings.ToLower(k), "-", "_") == name {
			value, found = v, true
		}
	}
	return value, found
}

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
func (s *Session) clampLockTimeout(ds []policy.StatementDecision) ([]byte, error) {
	cfg := s.srv.cfg.Policy.Engine().Config()
	def, max := time.Duration(cfg.LockTimeout), time.Duration(cfg.MaxLockTimeout)
	if def <= 0 || s.unsynced || s.batch != nil || s.pending.Load() > 0 || s.state.TxStatus() == 'E' {
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
	out, err := s.internalQuery(clampSQL(def, max))
	if err != nil || len(out.rows) != 1 || len(out.rows[0]) != 2 || out.rows[0][1] == nil {
		return nil, err
	}
	was := "?"
	if out.rows[0][0] != nil {
		was = *out.rows[0][0]
	}
	s.log.Warn("lock_timeout was off or above the maximum before a statement that blocks writes; set back", "set", def.String())
	n := &wire.PGError{Severity: "WARNING", Code: "01000",
		Message: fmt.Sprintf("pgguard: lock-timeout: this session's lock_timeout was %s; pgguard set it back to %s before this statement, which takes a %s lock", was, def, lock),
		Detail:  fmt.Sprintf("pgguard gives every session lock_timeout=%s; a client may lower it, but not turn it off or raise it above %s.", def, max),
	}
	return n.Encode(nil, true), nil
}

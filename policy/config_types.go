package policy

import (
	"fmt"
	"strings"

	"gopkg.in/yaml.v3"
)

// Mode is the global or per-profile enforcement mode.
type Mode uint8

// Modes.
const (
	// ModeEnforce applies the findings' actions as configured.
	ModeEnforce Mode = iota
	// ModeWarn turns reject and rewrite into warn: every statement runs as
	// sent (nothing is rewritten) and the client gets a warning.
	ModeWarn
	// ModeAudit turns every action into allow, keeping the findings (with
	// Action Allow) so that the proxy logs and counts them; clients see
	// nothing.
	ModeAudit
)

func (m Mode) String() string {
	switch m {
	case ModeEnforce:
		return "enforce"
	case ModeWarn:
		return "warn"
	case ModeAudit:
		return "audit"
	}
	return "unknown"
}

// UnmarshalYAML implements yaml.Unmarshaler.
func (m *Mode) UnmarshalYAML(n *yaml.Node) error {
	switch n.Value {
	case "enforce":
		*m = ModeEnforce
	case "warn":
		*m = ModeWarn
	case "audit":
		*m = ModeAudit
	default:
		return fmt.Errorf("invalid mode %q: must be enforce, warn or audit", n.Value)
	}
	return nil
}

// LockTimeoutScope says which statements get the policy's lock_timeout.
type LockTimeoutScope uint8

// Lock timeout scopes.
const (
	// ScopeDDL: only a statement that takes a lock blocking writes (SHARE
	// or stronger, not CONCURRENTLY) runs with lock_timeout at most
	// max_lock_timeout; pgguard sets it for that statement alone when the
	// session's own is off or higher, and puts the session's back after.
	// Every other statement keeps whatever the client chose, as on
	// PostgreSQL: an application's query that waits for a row lock, or
	// queues behind a migration's DDL, is never cancelled by pgguard.
	ScopeDDL LockTimeoutScope = iota
	// ScopeSession: every session gets lock_timeout at startup, and a
	// client may lower it but not turn it off or raise it above
	// max_lock_timeout (rule lock-timeout): a blanket timeout, which
	// also cancels application queries that wait that long for a lock.
	ScopeSession
)

func (s LockTimeoutScope) String() string {
	if s == ScopeSession {
		return "session"
	}
	return "ddl"
}

// UnmarshalYAML implements yaml.Unmarshaler.
func (s *LockTimeoutScope) UnmarshalYAML(n *yaml.Node) error {
	switch n.Value {
	case "ddl":
		*s = ScopeDDL
	case "session":
		*s = ScopeSession
	default:
		return fmt.Errorf("invalid lock_timeout_scope %q: must be ddl or session", n.Value)
	}
	return nil
}

// UnmarshalYAML implements yaml.Unmarshaler.
func (l *Level) UnmarshalYAML(n *yaml.Node) error {
	v, ok := map[string]Level{"off": LevelOff, "warn": LevelWarn, "reject": LevelReject, "rewrite": LevelRewrite}[n.Value]
	if n.Kind != yaml.ScalarNode || !ok {
		return fmt.Errorf("invalid rule level %q: must be reject, warn, off or rewrite", n.Value)
	}
	*l = v
	return nil
}

// Fallback is the level for what the engine cannot judge: reject, warn or
// allow (LevelOff: no finding).
type Fallback Level

// UnmarshalYAML implements yaml.Unmarshaler.
func (f *Fallback) UnmarshalYAML(n *yaml.Node) error {
	v, ok := map[string]Level{"allow": LevelOff, "warn": LevelWarn, "reject": LevelReject}[n.Value]
	if n.Kind != yaml.ScalarNode || !ok {
		return fmt.Errorf("invalid value %q: must be reject, warn or allow", n.Value)
	}
	*f = Fallback(v)
	return nil
}

// String returns the rules.yaml spelling.
func (f Fallback) String() string {
	if Level(f) == LevelOff {
		return "allow"
	}
	return Level(f).String()
}

func ruleIDs() string {
	var ids []string
	for _, r := range Rules() {
		ids = append(ids, r.ID)
	}
	return strings.Join(ids, ", ")
}

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

// Package pgguard holds what the whole module shares and that must live at
// the repository root: the default policy, rules.yaml, embedded in the
// binary. The code lives in cmd/pgguard, proxy and policy.
package pgguard

import _ "embed"

// DefaultRules is rules.yaml as shipped: the policy used when no rules file
// is given, documented line by line.
//
//go:embed rules.yaml
var DefaultRules []byte

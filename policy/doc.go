// Package policy is pgguard's judgement: it splits and parses SQL, and
// decides for each statement whether to allow, warn about, rewrite or
// reject it, with the reason and the safe recipe. It is a pure library:
// no sockets, no global state besides the rule registry.
//
// The proxy builds an Engine from a Config (rules.yaml) and calls
// Engine.DecideQuery for a simple-protocol Query or Engine.Decide for one
// statement (an extended-protocol Parse), with a Context describing the
// session. IsDDL is the cheap classification used on the hot path.
//
// Rules live one per file, rule_<id>.go, and register themselves from init
// with Register. Each has fixtures in testdata/<id>/ (see
// testdata/README.md), a doc page docs/rules/<id>.md, and, when it is
// about locks, a Verification proven against a real PostgreSQL by
// TestVerifyPG.
package policy

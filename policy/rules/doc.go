// Package rules holds pgguard's rules, one per file, <id>.go (with '-'
// spelled '_'): each registers itself with policy.Register from init, and
// the engine (package policy) runs every registered rule on every
// statement it parses. A program or test binary that builds a
// policy.Engine imports this package for its side effect; NewEngine
// refuses to build an engine with no rules.
//
// A rule sees one statement through a *policy.Check (its text, the
// session, the catalog) and reports findings with the reason and the safe
// recipe; the helpers that build recipes (advisory.go, textedit.go) live
// here, the ones the engine shares (names, constraints, tool steps) in
// package policy. Each rule has fixtures in policy/testdata/<id>/, run by
// policy's TestFixtures, and a page docs/rules/<id>.md.
package rules

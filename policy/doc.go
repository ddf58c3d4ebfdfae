// Package policy is pgguard's judgement: it splits and parses SQL, and
// decides for each statement whether to allow, warn about, rewrite or
// reject it, with the reason and the safe recipe. It is a pure library:
// no sockets, no global state besides the rule registry.
//
// The proxy builds an Engine from a Config (rules.yaml) and calls
// Engine.DecideQuery for a simple-protocol Query or Engine.Decide for one
// statement (an extended-protocol Parse), with a Context describing the
// session. sqltext.IsDDL is the cheap classification used on the hot path.
//
// Rooms: policy/sqltext is the SQL front end that reads text without a
// parse tree (lexer, split, fast-path classification, client_encoding and
// standard_conforming_strings, the bounded call into pg_query); it imports
// nothing of pgguard's. The rest of policy shares one set of types and
// stays one package, its groups named by file: the engine (engine.go,
// check.go, decision.go, registry.go, plpgsql.go, walk.go), the session
// model (txmemory.go, txeffect.go, context.go, relation.go, facts.go,
// locks.go, catalog_memo.go, settingsguard.go), config (config*.go,
// units.go, settings.go) and migration-tool awareness (tools.go,
// toolsteps.go, fixes.go, hints.go, ledger_record.go). The rules have a
// room of their own, policy/rules, which imports policy: whoever builds an
// Engine imports it, and NewEngine refuses to build one with no rules.
//
// Rules live one per file, policy/rules/<id>.go, and register themselves
// from init with Register. Each has fixtures in testdata/<id>/ (see
// testdata/README.md), a doc page docs/rules/<id>.md, and, when it is
// about locks, a Verification proven against a real PostgreSQL by
// TestVerifyPG.
package policy

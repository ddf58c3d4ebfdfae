package policy

import (
	"github.com/pgguard/pgguard/policy/sqltext"
	"regexp"
	"strings"
	"time"

	pg_query "github.com/pganalyze/pg_query_go/v6"
)

// MayChangeLockTimeout reports whether a statement may change the
// session's lock_timeout as it runs: SET or RESET of it (in any spelling
// the server accepts: the parser decodes quoted and Unicode-escaped
// names), set_config or pg_settings anywhere in the text (the name may be
// a bound parameter), or a DO block or CALL, whose code may do either.
//
// The proxy asks the server for the effective lock_timeout right before a
// statement that blocks writes; a statement like these, earlier in the same
// Query or batch, would change it after that check.
func MayChangeLockTimeout(text string) bool {
	if sqltext.ContainsFold(text, "set_config") || sqltext.ContainsFold(text, "pg_settings") {
		return true
	}
	switch {
	case sqltext.FirstWordIs(text, "do"), sqltext.FirstWordIs(text, "call"), sqltext.FirstWordIs(text, "execute"):
		return true
	case sqltext.FirstWordIs(text, "rollback"), sqltext.FirstWordIs(text, "abort"):
		// Undoes a SET made earlier in the transaction block or savepoint,
		// pgguard's own before the Query included.
		return true
	case !sqltext.FirstWordIs(text, "set") && !sqltext.FirstWordIs(text, "reset"):
		return false
	case !sqltext.ContainsFold(text, "lock_timeout") && !sqltext.ContainsFold(text, "u&") && !(sqltext.FirstWordIs(text, "reset") && sqltext.ContainsFold(text, "all")):
		// A SET or RESET of another setting (SET LOCAL statement_timeout,
		// SET application_name: what ORMs send all day) needs no parse:
		// lock_timeout is named in every spelling but a Unicode-escaped
		// identifier (U&"lock\005ftimeout"), which goes to the parser.
		return false
	}
	res, err := sqltext.PgParse(text)
	if err != nil || len(res.Stmts) != 1 {
		return true // what the server may read otherwise counts as a change
	}
	vs := res.Stmts[0].Stmt.GetVariableSetStmt()
	switch {
	case vs == nil:
		return false
	case vs.Kind == pg_query.VariableSetKind_VAR_RESET_ALL:
		// Back to the session default: the server's (off, unless a role
		// or database sets it) under lock_timeout_scope ddl.
		return true
	case !strings.EqualFold(vs.Name, "lock_timeout"):
		return false
	}
	return !plainPositiveTimeout(vs)
}

// PlainLockTimeout returns the value a SET of lock_timeout gives it when
// MayChangeLockTimeout counts it as no change (a plain, positive value):
// whether that is within max_lock_timeout is for the caller to judge.
func PlainLockTimeout(text string) (time.Duration, bool) {
	if !sqltext.FirstWordIs(text, "set") || !sqltext.ContainsFold(text, "lock_timeout") {
		return 0, false
	}
	res, err := sqltext.PgParse(text)
	if err != nil || len(res.Stmts) != 1 {
		return 0, false
	}
	vs := res.Stmts[0].Stmt.GetVariableSetStmt()
	if vs == nil || !strings.EqualFold(vs.Name, "lock_timeout") || !plainPositiveTimeout(vs) {
		return 0, false
	}
	c := vs.Args[0].GetAConst()
	if c.GetIval() != nil {
		return time.Duration(c.GetIval().Ival) * time.Millisecond, true
	}
	d, err := ParseLockTimeout(c.GetSval().Sval)
	return d, err == nil
}

// plainTimeout is a lock_timeout value that every reader takes the same
// way: whole units, no fraction, no sign, no hex.
var plainTimeout = regexp.MustCompile(`^[0-9]+ ?(ms|s|min|h|d)?$`)

// plainPositiveTimeout reports whether a SET gives lock_timeout a plain,
// non-zero value (SET lock_timeout = '2s', the usual guard in a
// migration); whether it is within the allowed maximum is the lock-timeout
// rule's to judge.
func plainPositiveTimeout(vs *pg_query.VariableSetStmt) bool {
	if vs.Kind != pg_query.VariableSetKind_VAR_SET_VALUE || len(vs.Args) != 1 {
		return false
	}
	c := vs.Args[0].GetAConst()
	switch {
	case c == nil:
		return false
	case c.GetIval() != nil:
		return c.GetIval().Ival > 0
	case c.GetSval() != nil:
		v := c.GetSval().Sval
		return plainTimeout.MatchString(v) && strings.Trim(v, "0 mshind") != ""
	}
	return false
}

// MayChangeSearchPath reports whether a statement may change which table an
// unqualified name means: SET or RESET of search_path, set_config or
// pg_settings anywhere in the text, a DO block or a CALL. (A table created
// in the same Query is remembered by the engine itself.)
func MayChangeSearchPath(text string) bool {
	if sqltext.ContainsFold(text, "set_config") || sqltext.ContainsFold(text, "pg_settings") || sqltext.FirstWordIs(text, "do") || sqltext.FirstWordIs(text, "call") {
		return true
	}
	if !sqltext.FirstWordIs(text, "set") && !sqltext.FirstWordIs(text, "reset") {
		return false
	}
	res, err := sqltext.PgParse(text)
	if err != nil || len(res.Stmts) != 1 {
		return true
	}
	vs := res.Stmts[0].Stmt.GetVariableSetStmt()
	return vs != nil && (vs.Kind == pg_query.VariableSetKind_VAR_RESET_ALL || strings.EqualFold(vs.Name, "search_path"))
}

// SessionEffects is MayChangeLockTimeout and WaitsForToolLock in one
// pass over the text, for the proxy's fast path, which asks both of every
// statement: the words they look for (set_config, pg_settings,
// pg_advisory_, and the lock tables knex_migrations_lock and
// databasechangeloglock) start with "s", "p", "k" or "d", so most bytes
// are skipped at once. It does not allocate unless the text names a tool's
// lock table (which is then parsed).
func SessionEffects(text string) (changesLockTimeout, waitsForToolLock bool) {
	maybe, lockTable := false, false
	for i := 0; i < len(text); i++ {
		switch text[i] {
		case 's', 'S':
			maybe = maybe || hasPrefixFold(text[i:], "set_config")
		case 'p', 'P':
			maybe = maybe || hasPrefixFold(text[i:], "pg_settings") || hasPrefixFold(text[i:], "pg_advisory_")
		case 'k', 'K', 'd', 'D':
			for _, l := range lockTables {
				lockTable = lockTable || hasPrefixFold(text[i:], l)
			}
		}
		if maybe {
			break
		}
	}
	if maybe {
		return MayChangeLockTimeout(text), WaitsForToolLock(text)
	}
	waits := lockTable && WritesOnlyToolLockTable(text)
	// Neither word: only a SET, RESET, DO or CALL can change lock_timeout.
	t, _ := sqltext.FirstWord(text)
	if t.WordIs(text, "set") || t.WordIs(text, "reset") || t.WordIs(text, "do") || t.WordIs(text, "call") {
		return MayChangeLockTimeout(text), waits
	}
	return false, waits
}

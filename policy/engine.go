package policy

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/pgguard/pgguard/policy/sqltext"

	pg_query "github.com/pganalyze/pg_query_go/v6"
)

// Engine judges statements against a Config. It is safe for concurrent use;
// build a new one to apply a new Config (the proxy swaps engines on reload).
type Engine struct {
	cfg      *Config
	rules    []*Rule
	profiles []profile // profiles[0] is the global policy
	parseDML bool
	// dmlFilters are the MayConcern checks of the enabled DML rules (nil
	// entries: always).
	dmlFilters []func(string) bool
	keywords   []string
	cache      *parseCache
	// parses counts the statements Decide looked up in the parse cache or
	// parsed: tests use it to prove that application traffic is never
	// parsed.
	parses atomic.Int64
	// alwaysParse makes Decide parse and judge every statement, even those
	// the pre-filter would let through: tests compare the fast path with it.
	alwaysParse bool
	// onEmptyName, when set (by tests), hears of every catalog question a
	// rule asks about an empty name; the catalog is not asked.
	onEmptyName func(method string)
}

// profile is a resolved rules.yaml profile: levels by rule index.
type profile struct {
	cfg    *Profile // nil for the global policy
	mode   Mode
	levels []Level
}

// StatementDecision is the decision on one statement of a Query.
type StatementDecision struct {
	Statement sqltext.Statement
	Decision  Decision
}

// cacheEntries bounds the parse cache; cacheMaxText keeps huge statements
// out of it.
const (
	cacheEntries = 4096
	cacheMaxText = 64 << 10
)

// NewEngine builds an engine from cfg; nil means DefaultConfig().
func NewEngine(cfg *Config) (*Engine, error) {
	if cfg == nil {
		var err error
		if cfg, err = DefaultConfig(); err != nil {
			return nil, fmt.Errorf("loading the built-in rules: %w", err)
		}
	}
	if len(Rules()) == 0 {
		return nil, errors.New("policy: no rules are registered: import github.com/pgguard/pgguard/policy/rules")
	}
	e := &Engine{cfg: cfg, rules: Rules(), cache: newParseCache(cacheEntries, cacheMaxText)}
	global, err := e.resolve(nil, cfg.Mode, cfg.Rules, nil)
	if err != nil {
		return nil, err
	}
	e.profiles = append(e.profiles, global)
	for i := range cfg.Profiles {
		p := &cfg.Profiles[i]
		mode := cfg.Mode
		if p.Mode != nil {
			mode = *p.Mode
		}
		rp, err := e.resolve(p, mode, p.Rules, global.levels)
		if err != nil {
			return nil, fmt.Errorf("profile %q: %w", p.Name, err)
		}
		e.profiles = append(e.profiles, rp)
	}
	seen := map[string]bool{}
	for i, r := range e.rules {
		for _, p := range e.profiles {
			if p.levels[i] == LevelOff {
				continue
			}
			if r.DML && !seen["\x00dml:"+r.ID] {
				seen["\x00dml:"+r.ID] = true
				e.parseDML = true
				e.dmlFilters = append(e.dmlFilters, r.MayConcern)
			}
			for _, k := range r.Keywords {
				if !seen[k] {
					seen[k] = true
					e.keywords = append(e.keywords, strings.ToLower(k))
				}
			}
		}
	}
	return e, nil
}

func (e *Engine) resolve(p *Profile, mode Mode, levels map[string]Level, base []Level) (profile, error) {
	out := profile{cfg: p, mode: mode, levels: make([]Level, len(e.rules))}
	for i, r := range e.rules {
		out.levels[i] = r.Default
		if base != nil {
			out.levels[i] = base[i]
		}
		if l, ok := levels[r.ID]; ok {
			if l == LevelRewrite && !r.CanRewrite {
				return out, fmt.Errorf("rule %q cannot rewrite", r.ID)
			}
			out.levels[i] = l
		}
	}
	for id := range levels {
		if _, ok := LookupRule(id); !ok {
			return out, fmt.Errorf("unknown rule %q", id)
		}
	}
	return out, nil
}

// Config returns the engine's configuration; do not modify it.
func (e *Engine) Config() *Config { return e.cfg }

// Profile returns the name of the profile that applies to a session ("" for
// the global policy).
func (e *Engine) Profile(sc *Context) string {
	if p := e.profileFor(sc); p.cfg != nil {
		return p.cfg.Name
	}
	return ""
}

// MigrationProfile reports whether the profile that applies to a session
// marks it as a migration's (profiles[].migration).
func (e *Engine) MigrationProfile(sc *Context) bool {
	p := e.profileFor(sc)
	return p.cfg != nil && p.cfg.Migration
}

// ModeFor returns the mode that applies to a session: its profile's, or
// the global one. Under ModeWarn and ModeAudit pgguard changes nothing the
// client sent.
func (e *Engine) ModeFor(sc *Context) Mode { return e.profileFor(sc).mode }

func (e *Engine) profileFor(sc *Context) *profile {
	if sc.Profile != "" {
		for i := 1; i < len(e.profiles); i++ {
			if e.profiles[i].cfg.Name == sc.Profile {
				return &e.profiles[i]
			}
		}
	}
	for i := 1; i < len(e.profiles); i++ {
		m := e.profiles[i].cfg.Match
		if matchAny(m.Database, sc.Database) && matchAny(m.User, sc.User) && matchAny(m.ApplicationName, sc.ApplicationName) {
			return &e.profiles[i]
		}
	}
	return &e.profiles[0]
}

// matchAny: an empty pattern list matches anything.
func matchAny(patterns []string, s string) bool {
	if len(patterns) == 0 {
		return true
	}
	for _, p := range patterns {
		if globMatch(p, s) {
			return true
		}
	}
	return false
}

// majorVersion turns server_version_num into a major version, or the
// assumed one when unknown.
func (e *Engine) majorVersion(sc *Context) int {
	switch v := sc.ServerVersion; {
	case v >= 100000:
		return v / 10000
	case v > 0:
		return v / 10000 // 9.x reports 90600: major 9
	}
	return e.cfg.AssumePGVersion
}

// DecideQuery splits a simple-protocol Query string and decides each
// statement. When the Query holds several statements, none of them is
// alone (they run as one implicit transaction), and tables created by an
// earlier statement count as created for the later ones. The error is
// non-nil only when ctx is done.
func (e *Engine) DecideQuery(ctx context.Context, query string, sc *Context) ([]StatementDecision, error) {
	if sc == nil {
		sc = &Context{Alone: true}
	}
	local := *sc
	if sc.BackslashQuote {
		// The statements are judged, and rewritten, as the text that
		// means the same with standard_conforming_strings on.
		query, _ = sqltext.StandardText(query)
		local.BackslashQuote = false
	}
	stmts := sqltext.SplitStrings(query, false)
	if len(stmts) > 1 {
		local.Alone = false
		for _, st := range stmts {
			if sqltext.Classify(st.Text) == sqltext.ClassDDL {
				local.QueryHasDDL = true
			}
		}
	}
	// What the Query's earlier statements did, as the session's memory
	// keeps it (savepoints included), on top of the session's.
	var mem TxMemory
	if len(stmts) > 1 {
		outerEx := sc.ExclusiveTables
		local.ExclusiveTables = func(schema, table string) bool {
			return mem.Exclusive(schema, table) || (outerEx != nil && outerEx(schema, table))
		}
		outer := sc.CreatedTables
		local.CreatedTables = func(schema, table string) bool {
			if created, known := mem.CreatedKnown(schema, table); known {
				return created // the Query dropped, renamed or created it
			}
			return outer != nil && outer(schema, table)
		}
		outerRem := sc.Remembers
		local.Remembers = func() bool { return mem.Active() || (outerRem != nil && outerRem()) }
		outerNV := sc.NotValidConstraints
		local.NotValidConstraints = func(t Table, name string) (string, bool) {
			if lock, ok := mem.NotValidLock(t, name); ok {
				return lock, true
			}
			if outerNV != nil {
				return outerNV(t, name)
			}
			return "", false
		}
	}
	out := make([]StatementDecision, 0, len(stmts))
	if len(stmts) > 1 {
		local.prepared = func(name string) (string, bool) {
			var text string
			for _, p := range out { // the statements before this one, last wins
				if !sqltext.FirstWordIs(p.Statement.Text, "prepare") {
					continue
				}
				if res, err := sqltext.PgParse(p.Statement.Text); err == nil && len(res.Stmts) == 1 {
					if ps := res.Stmts[0].Stmt.GetPrepareStmt(); ps != nil && ps.Name == name {
						text = p.Statement.Text
					}
				}
			}
			return text, text != ""
		}
	}
	lastDDL := -1
	if local.QueryHasDDL {
		for i, st := range stmts {
			if sqltext.Classify(st.Text) == sqltext.ClassDDL {
				lastDDL = i
			}
		}
		local.userCode = map[string]string{}
	}
	for i, s := range stmts {
		if err := ctx.Err(); err != nil {
			return out, err
		}
		local.beforeDDL = i < lastDDL
		d := e.Decide(ctx, s, &local)
		if MayChangeSearchPath(s.Text) && local.Catalog != nil {
			// The catalog answers for the search_path as it was before
			// this Query: for the statements after this one, a name may
			// mean another table, so their sizes are unknown (large),
			// and what rule large-dml would estimate cannot be.
			local.Catalog = nil
			local.Unestimable = "it follows a statement that may change the search_path in the same Query"
		}
		if d.DDL {
			// The catalog answers for the names as they were before this
			// Query: after a DDL statement, which relation a name means
			// (and whether it exists) may have changed.
			local.NamesMoved = true
		}
		mem.Apply(d.Effect())
		if endsTransaction(s.Text) {
			// A COMMIT or ROLLBACK inside the Query: its locks end; a
			// table it created stays new (and empty) for the rest of it.
			mem.endTransaction()
		}
		out = append(out, StatementDecision{Statement: s, Decision: d})
	}
	return out, nil
}

// Decide judges one statement. It never fails: what cannot be parsed is a
// parse-error finding (on_parse_error).
//
// Findings keep the action the policy gives them after the profile, the
// escape hatch and the mode are applied: in audit mode every finding is
// kept with Action Allow so the caller can log it; a finding allowed by an
// annotation has Action Allow and AllowedBy set.
func (e *Engine) Decide(ctx context.Context, stmt sqltext.Statement, sc *Context) Decision {
	if sc == nil {
		sc = &Context{Alone: true}
	}
	if sc.BackslashQuote {
		if text, changed := sqltext.StandardText(stmt.Text); changed {
			stmt.Text, stmt.End = text, stmt.Start+len(text)
		}
	}
	cls := sqltext.Classify(stmt.Text)
	d := Decision{DDL: cls == sqltext.ClassDDL}
	// In a transaction block, a call of user code may take any lock
	// (LOCK TABLE, ALTER TABLE in its body): the memory of the
	// transaction then lets the server say which (HoldsExclusive).
	userCall := cls != sqltext.ClassEmpty && cls != sqltext.ClassDDL && CallsUserFunction(stmt.Text)
	d.LocksUnnamedExclusive = sc.InTransaction && (userCall || cls == sqltext.ClassSession && sqltext.FirstWordIs(stmt.Text, "execute"))
	if sc.beforeDDL && (cls == sqltext.ClassQuery || cls == sqltext.ClassDML) {
		// (SET, BEGIN, PREPARE and the like run no user code; EXECUTE,
		// DO and CALL count as changing lock_timeout anyway.)
		d.ChangesLockTimeout = userCodeLockTimeout(ctx, sc.Catalog, stmt.Text, sc.userCode)
	}
	if !e.alwaysParse && !e.needsParse(cls, stmt.Text, sc.Migration || sc.QueryHasDDL) && !userCall && !(cls == sqltext.ClassDML && HoldsExclusive(sc)) &&
		!(cls == sqltext.ClassSession && sc.Remembers != nil && sc.Remembers() && savepointText(stmt.Text)) {
		return d
	}
	observer, _ := sc.Catalog.(RenameObserver)
	if sc.Catalog != nil {
		// Each question about a relation is asked once per statement.
		memo := *sc
		memo.Catalog = newMemoCatalog(sc.Catalog, e.onEmptyName)
		sc = &memo
	}
	prof := e.profileFor(sc)
	j := judgement{e: e, ctx: ctx, sc: sc, prof: prof, version: e.majorVersion(sc),
		appCalls: userCall && !sc.Migration && !sc.QueryHasDDL && !sc.InTransaction}
	e.parses.Add(1)
	node, err := e.cache.parse(stmt.Text, int(e.cfg.MaxStatementBytes))
	if err != nil {
		switch {
		case sc.ServerVersion > 0 && sqltext.ServerRejectsToo(err, stmt.Text, j.version):
			// The server cannot parse it either: its own answer (42601)
			// is the client's, and nothing of it runs.
		case cls == sqltext.ClassDDL, cls == sqltext.ClassQuery && sqltext.FirstWordIs(stmt.Text, "select") && sqltext.HasWordInto(stmt.Text):
			// DDL, or SELECT ... INTO, which creates a table.
			j.engineFinding(ParseErrorRule, Level(e.cfg.OnParseError), Report{
				Message: "pgguard could not parse this statement, so it cannot tell which locks it takes: " + err.Error() + ".",
				Hint:    "-- check the statement on your server first; if it is valid there, add:\n" + AllowAnnotation(sc.Tool, ParseErrorRule, "..."),
			})
		case sc.Migration && e.parseDML && migrationParses(cls, stmt.Text) && cls != sqltext.ClassSession:
			// A migration's UPDATE or DELETE is judged by its rows: one
			// pgguard cannot read goes by on_parse_error, not unjudged.
			j.engineFinding(ParseErrorRule, Level(e.cfg.OnParseError), Report{
				Message: "pgguard could not parse this statement, so it cannot tell how many rows it changes: " + err.Error() + ".",
				Hint:    "-- check the statement on your server first; if it is valid there, add:\n" + AllowAnnotation(sc.Tool, ParseErrorRule, "..."),
			})
		}
	} else if ex := node.GetExecuteStmt(); ex != nil && sc.Migration && e.parseDML {
		if text, ok := executedText(ctx, sc, ex, sc.prepared); ok {
			// Judged as the UPDATE or DELETE it runs, with its values.
			inner := stmt
			inner.Text, inner.End = text, stmt.Start+len(text)
			return e.Decide(ctx, inner, sc)
		}
	} else {
		f := statementFacts(node)
		if observer != nil {
			if from, to, ok := RenamedRelation(node); ok {
				observer.WillRename(ctx, from.String(), to)
			}
		}
		d.DDL, d.Lock, d.Concurrent, d.Retryable = f.ddl, f.lock, f.concurrent, f.retryable
		d.CreatesTables = createdTables(ctx, sc, node, f.creates)
		d.MovesTables = movedRelations(node)
		d.AddsNotValid = NotValidAdds(node)
		if f.lock == LockAccessExclusive {
			for _, t := range exclusiveTables(node) {
				if node.GetLockStmt() == nil {
					// Not before LOCK: it takes no snapshot, and a
					// question of pgguard's would take the
					// transaction's before the lock is granted.
					t = resolvedName(ctx, sc, t)
				}
				d.LocksExclusive = append(d.LocksExclusive, t)
			}
		}
		d.LocksUnnamedExclusive = d.LocksUnnamedExclusive || locksUnnamedExclusive(node, f.lock)
		d.TableLocks = tableLocks(node, f)
		d.Savepoint = savepointOp(node)
		if !namesOtherDatabase(node, sc.Database) {
			j.judge(node, stmt.Text, false, 0)
		}
		d.Lock = strongerLock(d.Lock, j.innerLock)
		d.MovesTables = append(d.MovesTables, j.innerMoves...)
		// A called function's DDL is the statement's: it gets what DDL
		// gets (lock_timeout, the look, the audit line).
		d.DDL = d.DDL || j.calledDDL
		if j.calledDDL && cls != sqltext.ClassDDL && d.ChangesLockTimeout == "" && !sc.beforeDDL {
			// Its DDL runs in what it calls, with the lock_timeout that
			// pgguard sets before it, unless that code turns it off first.
			d.ChangesLockTimeout = userCodeLockTimeout(ctx, sc.Catalog, stmt.Text, sc.userCode)
		}
		if j.innerLock == LockAccessExclusive {
			// A DO block's statement took it (LOCK, ALTER TABLE, ...):
			// the block names no table of its own, so only the server
			// can say which ones it holds now.
			d.LocksUnnamedExclusive = true
		}
	next:
		for _, tl := range j.innerTableLocks {
			for i := range d.TableLocks {
				if d.TableLocks[i].Same(tl) {
					d.TableLocks[i].Mode = strongerLock(d.TableLocks[i].Mode, tl.Mode)
					continue next
				}
			}
			d.TableLocks = append(d.TableLocks, tl)
		}
	}
	if len(j.found) == 0 && !sqltext.ContainsFold(stmt.Text, annotationPrefix) {
		return d
	}
	j.finish(stmt.Text, &d)
	if d.Action == Rewrite {
		if n, err := e.cache.parse(d.Rewritten, int(e.cfg.MaxStatementBytes)); err == nil {
			f := statementFacts(n)
			d.Concurrent, d.Retryable = f.concurrent, d.Retryable && f.retryable
			d.TableLocks = tableLocks(n, f)
		}
	}
	return d
}

// HoldsExclusive reports whether the session's open transaction holds an
// ACCESS EXCLUSIVE lock on some table: its UPDATEs and DELETEs must then
// be judged whatever their shape (rule large-dml), so the proxy's fast
// path (Plain) does not apply to them.
func HoldsExclusive(sc *Context) bool {
	return sc != nil && sc.ExclusiveTables != nil && sc.ExclusiveTables("", "")
}

// Plain reports whether the engine would let every statement of query
// through untouched without parsing it (no DDL, nothing a rule looks at),
// as DecideQuery would with an Allow and no findings for each, and how many
// statements there are. It is the proxy's fast path for application
// traffic: it does not allocate and does not keep query.
func (e *Engine) Plain(query string) (statements int, plain bool) {
	statements, plain, _ = e.plain(query, false)
	return statements, plain
}

// PlainBackslash is Plain for a session whose standard_conforming_strings
// is off: a backslash escapes a quote in '...'.
func (e *Engine) PlainBackslash(query string) (statements int, plain bool) {
	statements, plain, _ = e.plain(query, true)
	return statements, plain
}

// PlainDML is Plain that also reports whether a statement it let through
// is an UPDATE, DELETE or MERGE that only an application's session may
// skip (Context.Migration): in a migration's session it must be judged.
func (e *Engine) PlainDML(query string, backslashQuote bool) (statements int, plain, dml bool) {
	return e.plain(query, backslashQuote)
}

func (e *Engine) plain(query string, backslashQuote bool) (statements int, plain, dml bool) {
	plain = true
	if backslashQuote {
		// Rare (standard_conforming_strings off): the pre-filter reads the
		// text that means the same with the setting on.
		query, _ = sqltext.StandardText(query)
	}
	sqltext.SplitEach(query, false, func(s sqltext.Statement) bool {
		cls := sqltext.Classify(s.Text)
		if cls == sqltext.ClassDDL || e.needsParse(cls, s.Text, false) || cls != sqltext.ClassEmpty && CallsUserFunction(s.Text) {
			plain = false
			return false
		}
		dml = dml || (e.parseDML && migrationParses(cls, s.Text))
		statements++
		return true
	})
	return statements, plain, dml
}

// migrationParses reports whether a statement of class cls that an
// application's session may skip is judged by rule large-dml in a
// migration's session: UPDATE, DELETE, MERGE and the like, EXECUTE of a
// prepared one (execute.go), an INSERT, whose table's rules and triggers
// may change any number of rows elsewhere, and a statement that calls a
// function.
func migrationParses(cls sqltext.Class, text string) bool {
	switch cls {
	case sqltext.ClassDML:
		return true
	case sqltext.ClassSession:
		return sqltext.FirstWordIs(text, "execute")
	case sqltext.ClassQuery:
		// An INSERT's table may have rules and triggers; a statement that
		// calls a function (SELECT f(), CALL p()) may run a body that
		// changes rows.
		return sqltext.FirstWordIs(text, "insert") || strings.IndexByte(text, '(') >= 0
	}
	return false
}

// needsParse reports whether a statement of class cls must be parsed. A
// DML statement that the enabled rules' cheap looks say does not concern
// them is skipped, except in a migration's session.
func (e *Engine) needsParse(cls sqltext.Class, text string, migration bool) bool {
	switch cls {
	case sqltext.ClassEmpty:
		return false
	case sqltext.ClassDDL:
		return true

	case sqltext.ClassSession:
		if migration && e.parseDML && migrationParses(cls, text) {
			return true // it may run a prepared UPDATE or DELETE (execute.go)
		}
	case sqltext.ClassDML:
		if migration && e.parseDML {
			return true
		}
		for _, f := range e.dmlFilters {
			if f == nil || f(text) {
				return true
			}
		}
	case sqltext.ClassQuery:
		if sqltext.FirstWordIs(text, "select") && sqltext.HasWordInto(text) {
			return true // SELECT ... INTO creates a table
		}
		if migration && e.parseDML && migrationParses(cls, text) {
			return true
		}
	}
	for _, k := range e.keywords {
		if sqltext.ContainsFold(text, k) {
			return true
		}
	}
	return false
}

// judgement collects the findings for one top-level statement.
type judgement struct {
	e         *Engine
	ctx       context.Context
	sc        *Context
	prof      *profile
	version   int
	found     []found
	innerLock string
	// innerTableLocks are the TableLocks of the statements of a body that
	// runs now (a DO block's), as innerLock.
	innerTableLocks []TableLock
	// innerMoves are the relations the statements of a body drop, rename
	// or move (movedRelations), as innerTableLocks.
	innerMoves []TableMove
	// called: the functions whose bodies judgeCalled has judged for this
	// statement; inCalled: a body of one is being judged (Check.Called).
	called    map[string]bool
	inCalled  bool
	calledDDL bool // a statement of a called body is DDL
	// appCalls: an application's statement outside a transaction block
	// calls user code (CallsUserFunction): the bodies are read for the
	// locks they take (the DDL's lock_timeout and look), not judged by
	// the rules. (In a block, where a question of pgguard's could take
	// the transaction's snapshot before the call would, only the
	// server's pg_locks is asked, before the next data change:
	// Decision.LocksUnnamedExclusive.)
	appCalls bool
}

type found struct {
	id    string
	rule  *Rule
	level Level
	Report
}

// maxNesting bounds DO blocks inside functions inside DO blocks; what is
// nested deeper is a parse-error finding, never silently allowed.
const maxNesting = 16

// judge runs every enabled rule over a parsed statement, then over the
// statements inside DO blocks and PL/pgSQL functions.
func (j *judgement) judge(node *pg_query.Node, text string, nested bool, depth int) {
	for i, r := range j.e.rules {
		level := j.prof.levels[i]
		if level == LevelOff {
			continue
		}
		c := &Check{Ctx: j.ctx, Session: j.sc, Version: j.version, Text: text, Nested: nested, Called: j.inCalled,
			LockTimeout: time.Duration(j.e.cfg.LockTimeout), MaxLockTimeout: time.Duration(j.e.cfg.MaxLockTimeout),
			LockTimeoutScope: j.e.cfg.LockTimeoutScope, MaxDMLRows: j.e.cfg.LargeDML.MaxRows}
		r.Check(c, node)
		for _, rep := range c.reports {
			if r.SizeDependent && !rep.Unsized && !j.large(&rep) {
				continue
			}
			if !r.Advisory && c.nobodyElses(rep.Table) {
				continue
			}
			if nested {
				rep.Rewrite = ""
			}
			j.found = append(j.found, found{id: r.ID, rule: r, level: level, Report: rep})
		}
	}
	if depth < maxNesting {
		j.judgeBodies(node, text, depth)
		j.judgeCalled(node, depth)
		return
	}
	if node.GetDoStmt() != nil || node.GetCreateFunctionStmt() != nil {
		j.engineFinding(ParseErrorRule, Level(j.e.cfg.OnParseError), Report{
			Message: fmt.Sprintf("DO blocks and functions nested %d deep are more than pgguard checks, so it cannot tell which locks the innermost one takes.", maxNesting),
		})
	}
}

func (j *judgement) engineFinding(id string, level Level, r Report) {
	if level == LevelOff {
		return
	}
	j.found = append(j.found, found{id: id, level: level, Report: r})
}

// large reports whether a size-dependent report's table is large enough to
// matter, adding what is known about its size to the detail. A table is
// small only when the catalog says both its row estimate and its total
// size are below the thresholds: a few wide rows can still take long to
// rewrite, and many narrow rows long to scan.
func (j *judgement) large(r *Report) bool {
	t := r.Table
	if t.Name == "" {
		return true
	}
	if createdIn(j.ctx, j.sc, t) {
		return false
	}
	if j.sc.Catalog == nil {
		r.Detail = JoinSentences(r.Detail, "Without a catalog, pgguard assumes "+t.String()+" is large.")
		return true
	}
	size, ok := j.sc.Catalog.TableSize(j.ctx, t.String())
	if !ok {
		r.Detail = JoinSentences(r.Detail, "The size of "+t.String()+" is unknown, so pgguard assumes it is large.")
		return true
	}
	th := j.e.cfg.SizeThresholds
	if size.Rows < th.Rows && size.Bytes < int64(th.Bytes) {
		return false
	}
	from := ""
	if size.From != "" {
		from = " in " + size.From
	}
	r.Detail = JoinSentences(r.Detail, fmt.Sprintf("%s holds about %d rows in %s%s.", t.String(), size.Rows, humanBytes(size.Bytes), from))
	return true
}

// finish applies levels, annotations and the mode, and fills the decision.
func (j *judgement) finish(text string, d *Decision) {
	known := func(id string) bool {
		_, ok := LookupRule(id)
		return ok || id == ParseErrorRule || id == DynamicSQLRule
	}
	anns, problems := annotations(text, known)
	for _, p := range problems {
		j.found = append(j.found, found{id: BadAnnotationRule, level: LevelReject, Report: Report{
			Message: "Invalid pgguard:allow annotation: " + p + ".",
			Hint:    AllowAnnotation(j.sc.Tool, "<rule-id>[,<rule-id>]", "why this is safe here"),
		}})
	}
	roleOK := matchAny(j.e.cfg.Annotations.AllowedRoles, j.sc.User) && len(j.e.cfg.Annotations.AllowedRoles) > 0
	rewrites := 0
	for _, f := range j.found {
		fi := Finding{RuleID: f.id, Message: withFix(f.id, f.Message, j.sc.Tool), Detail: f.Detail, Hint: expandHint(f.Hint, j.sc.Tool), Table: tableString(f.Table), Lock: f.Lock}
		switch f.level {
		case LevelWarn:
			fi.Action = Warn
		case LevelReject:
			fi.Action = Reject
		case LevelRewrite:
			fi.Action = Reject
			if f.Rewrite != "" && rewrites == 0 {
				fi.Action = Rewrite
				d.Rewritten = f.Rewrite
				rewrites++
			}
		}
		if reason, ok := allowsRule(anns, f.id); ok && f.id != BadAnnotationRule {
			if roleOK {
				fi.Action, fi.AllowedBy = Allow, reason
			} else {
				fi.Detail = JoinSentences(fi.Detail, fmt.Sprintf("The pgguard:allow annotation was ignored: role %q is not in annotations.allowed_roles.", j.sc.User))
			}
		}
		switch j.prof.mode {
		case ModeWarn:
			if fi.Action > Warn {
				fi.Action = Warn
			}
		case ModeAudit:
			fi.Action = Allow
		}
		if fi.Action > d.Action {
			d.Action = fi.Action
		}
		d.Findings = append(d.Findings, fi)
		if d.Lock == "" && f.Lock != "" {
			d.Lock = f.Lock
		}
	}
	if d.Action != Rewrite {
		d.Rewritten = ""
	}
}

func tableString(t Table) string {
	if t.Name == "" {
		return ""
	}
	return t.String()
}

func humanBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f kB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d bytes", n)
}

// ParseTableName is the inverse of Table.String: "schema.name" or "name",
// double-quoted where needed. The proxy uses it for the names decisions carry.
func ParseTableName(s string) Table {
	unq := func(p string) string {
		if len(p) >= 2 && p[0] == '"' && p[len(p)-1] == '"' {
			return strings.ReplaceAll(p[1:len(p)-1], `""`, `"`)
		}
		return p
	}
	// A dot outside quotes separates the schema.
	inQ := false
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '"':
			inQ = !inQ
		case '.':
			if !inQ {
				return Table{Schema: unq(s[:i]), Name: unq(s[i+1:])}
			}
		}
	}
	return Table{Name: unq(s)}
}

// TableIn reports whether (schema, table) is in list; an unqualified name
// on either side matches any schema.
func TableIn(list []Table, schema, table string) bool {
	for _, t := range list {
		if t.Name != table {
			continue
		}
		switch {
		case t.Schema == "pg_temp":
			// A temporary table is what an unqualified name finds first.
			if schema == "" || schema == "pg_temp" {
				return true
			}
		case t.Schema == "" || schema == "" || t.Schema == schema:
			return true
		}
	}
	return false
}

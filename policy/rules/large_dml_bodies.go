package rules

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/pgguard/pgguard/policy"

	pg_query "github.com/pganalyze/pg_query_go/v6"
	"github.com/pgguard/pgguard/policy/sqltext"
)

// User code a statement runs (rule large-dml, in a migration's session):
// the functions of the triggers that fire for it, and the user functions
// and procedures it calls (VOLATILE ones, LANGUAGE sql or plpgsql; others
// cannot write, or are not user code that pgguard can read). Their bodies
// come from pg_proc.prosrc; each data-changing statement of a body is
// estimated as a generic plan would be: a variable, an argument, and a
// field of NEW or OLD become a scalar subquery of the same type, whose
// value the planner does not know, as it does not know a parameter's. The
// model of how often a body runs:
//
//   - a FOR EACH ROW trigger runs once per row the statement changes
//     (the statement's own estimate); a FOR EACH STATEMENT trigger once;
//   - a function called by the statement runs once per row the
//     statement returns or changes (once for SELECT f() and CALL p());
//     a function called by a body statement, once per row that statement
//     changes (at least once);
//   - a body statement that changes e rows, run n times, changes e × n
//     rows of its table (an INSERT ... VALUES of one row run per row
//     inserts as many rows as the statement changes).
//
// More than max_rows on any table is refused. A body statement pgguard
// cannot estimate (an EXECUTE of text built at run time, a statement the
// planner refuses without the values), a count of runs it does not know,
// and code nested more than maxBodyDepth calls deep are refused in a
// migration's session as unsizable: where pgguard cannot know, the
// migration is told to batch.

// maxBodyDepth bounds functions calling functions; a function already on
// the way (recursion) is not read again.
const maxBodyDepth = 4

// bodyRun is one body to judge and how often it runs.
type bodyRun struct {
	fn    policy.Function
	via   string       // how the statement reaches it, for messages
	times int64        // runs; -1 when unknown
	row   policy.Table // the table whose rows NEW and OLD are, for a trigger
	// args are the constant arguments the call passes (SQL; nil when
	// unknown): the body is estimated with them.
	args  []string
	depth int
	seen  map[string]bool
}

// bodyHint is the recipe when user code changes too many rows.
func bodyHint() string {
	return "-- move the data change out of the function or trigger into its own statements, run outside the migration\n" +
		"-- in batches of about " + strconv.Itoa(largeDMLBatch) + " rows, each in its own transaction"
}

// unsizable reports user code whose rows pgguard cannot know.
func unsizable(c *policy.Check, t policy.Table, via, why string) {
	c.Report(policy.Report{
		Table:   t,
		Lock:    policy.LockRowExclusive,
		Unsized: true,
		Message: fmt.Sprintf("The statement runs %s, which may change rows that pgguard cannot size (%s); in a migration's session every data change must be sized, and backfills of more than %s rows belong in batches outside the migration.",
			via, why, thousands(c.MaxDMLRows)),
		Hint: bodyHint(),
	})
}

// judgeCalls judges the user functions a statement that runs now calls
// (SELECT f(), CALL p(), UPDATE t SET x = f(x), INSERT ... VALUES (f())).
func judgeCalls(c *policy.Check, n *pg_query.Node) {
	if !c.Session.Migration || c.Session.Catalog == nil {
		return
	}
	switch n.GetNode().(type) {
	case *pg_query.Node_SelectStmt, *pg_query.Node_InsertStmt, *pg_query.Node_UpdateStmt, *pg_query.Node_DeleteStmt,
		*pg_query.Node_MergeStmt, *pg_query.Node_CallStmt, *pg_query.Node_CreateTableAsStmt:
	default:
		return
	}
	calls := callsIn(n)
	names := policy.CalledNames(n)
	if len(names) == 0 {
		return
	}
	fc, ok := c.Session.Catalog.(policy.FunctionCatalog)
	if !ok {
		return
	}
	fns, ok := fc.FunctionBodies(c.Ctx, names)
	if !ok || len(fns) == 0 {
		return
	}
	times := int64(1)
	sel := n.GetSelectStmt()
	if n.GetCallStmt() == nil && !(sel != nil && len(sel.FromClause) == 0 && sel.Op == pg_query.SetOperation_SETOP_NONE && len(sel.ValuesLists) <= 1) {
		times = -1
		rows, ok := int64(0), false
		if n.GetInsertStmt() != nil {
			rows, ok = bodyRows(c, n) // its VALUES, or its SELECT's estimate
		} else {
			rows, ok = c.Session.Catalog.EstimateRows(c.Ctx, c.SQL())
		}
		if ok {
			times = max(rows, 1)
		}
	}
	seen := map[string]bool{}
	for _, f := range fns {
		seen[f.Name] = true
	}
	for _, f := range fns {
		judgeBody(c, bodyRun{fn: f, via: "function " + f.Name, times: times, args: argsOf(f, calls), seen: seen})
	}
}

// judgeDDLCalls judges the user functions that an ALTER TABLE runs for
// each row of its table while it rewrites or checks it (measured on
// PostgreSQL 15): a volatile DEFAULT of ADD COLUMN (the table is
// rewritten, the default computed per row), a CHECK of ADD COLUMN or ADD
// CONSTRAINT that is validated now (not NOT VALID), and the USING
// expression of ALTER COLUMN ... TYPE. Each such function runs once per
// row of the table (its planner and live-tuple count): a body statement
// that changes e rows changes e × n. An index expression or predicate and
// a generated column call only IMMUTABLE functions, which cannot write
// (the server refuses others); CREATE TABLE AS runs now and is judged by
// judgeCalls. The functions of a constraint VALIDATE CONSTRAINT checks,
// already in the catalog, are not read.
func judgeDDLCalls(c *policy.Check, n *pg_query.Node) {
	if !c.Session.Migration || c.Session.Catalog == nil {
		return
	}
	t, cmds := policy.AlterTableCmds(n)
	if t.Name == "" || c.Created(t) {
		return
	}
	var exprs []*pg_query.Node
	for _, cmd := range cmds {
		switch cmd.Subtype {
		case pg_query.AlterTableType_AT_AddColumn:
			col := cmd.GetDef().GetColumnDef()
			if col == nil {
				continue
			}
			if col.RawDefault != nil {
				exprs = append(exprs, col.RawDefault)
			}
			for _, cn := range col.Constraints {
				if k := cn.GetConstraint(); k != nil && (k.Contype == pg_query.ConstrType_CONSTR_DEFAULT || k.Contype == pg_query.ConstrType_CONSTR_CHECK && !k.SkipValidation) && k.RawExpr != nil {
					exprs = append(exprs, k.RawExpr)
				}
			}
		case pg_query.AlterTableType_AT_AlterColumnType:
			if col := cmd.GetDef().GetColumnDef(); col != nil && col.RawDefault != nil {
				exprs = append(exprs, col.RawDefault) // USING
			}
		case pg_query.AlterTableType_AT_AddConstraint:
			if k := cmd.GetDef().GetConstraint(); k != nil && k.Contype == pg_query.ConstrType_CONSTR_CHECK && !k.SkipValidation && k.RawExpr != nil {
				exprs = append(exprs, k.RawExpr)
			}
		}
	}
	if len(exprs) == 0 {
		return
	}
	list := &pg_query.Node{Node: &pg_query.Node_List{List: &pg_query.List{Items: exprs}}}
	names := policy.CalledNames(list)
	if len(names) == 0 {
		return
	}
	fc, ok := c.Session.Catalog.(policy.FunctionCatalog)
	if !ok {
		return
	}
	fns, ok := fc.FunctionBodies(c.Ctx, names)
	if !ok || len(fns) == 0 {
		return
	}
	times := int64(-1)
	if size, ok := c.Session.Catalog.TableSize(c.Ctx, t.String()); ok {
		times = max(size.Rows, 0)
	}
	if times == 0 {
		return // an empty table: nothing is computed
	}
	calls := callsIn(list)
	seen := map[string]bool{}
	for _, f := range fns {
		seen[f.Name] = true
	}
	for _, f := range fns {
		judgeBody(c, bodyRun{fn: f, via: "function " + f.Name + " for each row of " + t.String() + " (in a DEFAULT, CHECK or USING expression the ALTER TABLE computes per row)",
			times: times, args: argsOf(f, calls), seen: seen})
	}
}

// callsIn maps each function a statement calls (CALL's procedure too), as
// written, to the arguments every call of it passes when they are all
// constants (as SQL), nil otherwise.
func callsIn(msg *pg_query.Node) map[string][]string {
	out := map[string][]string{}
	add := func(f *pg_query.FuncCall) {
		name := policy.NameList(f.Funcname)
		if name == "" {
			return
		}
		var args []string
		for _, a := range f.Args {
			v := a
			if tc := v.GetTypeCast(); tc != nil {
				v = tc.Arg
			}
			if v.GetAConst() == nil {
				args = nil
				break
			}
			args = append(args, policy.DeparseExpr(a))
		}
		if len(args) != len(f.Args) {
			args = nil
		}
		if prev, seen := out[name]; seen && strings.Join(prev, "\x00") != strings.Join(args, "\x00") {
			args = nil
		}
		out[name] = args
	}
	if cs := msg.GetCallStmt(); cs != nil && cs.Funccall != nil {
		add(cs.Funccall)
	}
	policy.Walk(msg, func(x *pg_query.Node) bool {
		if f := x.GetFuncCall(); f != nil {
			add(f)
		}
		return true
	})
	return out
}

// argsOf returns the constant arguments that calls pass to f ("" where
// not known): calls maps names as written to their arguments (callsIn).
func argsOf(f policy.Function, calls map[string][]string) []string {
	short := f.Name[strings.LastIndexByte(f.Name, '.')+1:]
	var vals []string
	for name, args := range calls {
		if t := policy.ParseTableName(name); t.Name != short || args == nil {
			continue
		}
		if vals != nil && strings.Join(vals, "\x00") != strings.Join(args, "\x00") {
			return nil
		}
		vals = args
	}
	return vals
}

// judgeTriggers judges the functions of the triggers that fire for a
// statement that changes rows of t (rows: the statement's estimate).
func judgeTriggers(c *policy.Check, t policy.Table, event string, triggers []policy.Trigger, rows func() (int64, bool)) {
	judgeTriggersOf(c, nil, t, triggers, rows, 1)
}

// judgeTriggersOf judges the functions of triggers on t. rows estimates
// the rows one run of the statement that fires them changes; runs is how
// often that statement runs (-1: unknown). parent, when set, is the body
// whose statement fires them: they are then as many calls deeper, and a
// trigger function already on its way (a trigger that fires itself) is
// not read again.
func judgeTriggersOf(c *policy.Check, parent *bodyRun, t policy.Table, triggers []policy.Trigger, rows func() (int64, bool), runs int64) {
	n, known := int64(0), false
	asked := false
	for _, tr := range triggers {
		if tr.Language != "plpgsql" && tr.Language != "sql" {
			continue // C and internal trigger functions are not user code that changes tables
		}
		times := runs
		if tr.ForEachRow {
			if !asked {
				n, known = rows()
				asked = true
			}
			times = timesOf(n, known, runs)
		}
		fn := policy.Function{Name: tr.Function, Language: tr.Language, Body: tr.Body, Trigger: true}
		r := bodyRun{fn: fn, via: "trigger " + policy.QuoteIdent(tr.Name) + " on " + t.String() + " (function " + tr.Function + ")",
			times: times, row: t, seen: map[string]bool{tr.Function: true}}
		if parent != nil {
			if parent.seen[tr.Function] {
				continue
			}
			for k := range parent.seen {
				r.seen[k] = true
			}
			r.via = parent.via + ", which fires " + r.via
			r.depth = parent.depth + 1
		}
		judgeBody(c, r)
	}
}

// timesOf is how often a row-level trigger runs: rows per run of the
// statement that fires it (known or not), times its runs (-1: unknown).
func timesOf(rows int64, known bool, runs int64) int64 {
	if !known || runs < 0 {
		return -1
	}
	rows = max(rows, 0)
	if runs > 1 && rows > 0 {
		if t := rows * runs; t/runs == rows {
			return t
		}
		return 1 << 62 // overflow: far too many
	}
	return rows * max(runs, 1)
}

// eventsOf lists the events (INSERT, UPDATE, DELETE) a data-changing
// statement raises on its table: a MERGE's, one per kind of its actions.
func eventsOf(n *pg_query.Node) []string {
	switch s := n.GetNode().(type) {
	case *pg_query.Node_UpdateStmt:
		return []string{"UPDATE"}
	case *pg_query.Node_DeleteStmt:
		return []string{"DELETE"}
	case *pg_query.Node_InsertStmt:
		ev := []string{"INSERT"}
		if oc := s.InsertStmt.OnConflictClause; oc != nil && oc.Action == pg_query.OnConflictAction_ONCONFLICT_UPDATE {
			ev = append(ev, "UPDATE")
		}
		return ev
	case *pg_query.Node_MergeStmt:
		return mergeEvents(s.MergeStmt)
	}
	return nil
}

// mergeEvents lists the kinds of a MERGE's actions, each once.
func mergeEvents(m *pg_query.MergeStmt) []string {
	var out []string
	seen := map[string]bool{}
	for _, w := range m.MergeWhenClauses {
		ev := ""
		switch w.GetMergeWhenClause().GetCommandType() {
		case pg_query.CmdType_CMD_INSERT:
			ev = "INSERT"
		case pg_query.CmdType_CMD_UPDATE:
			ev = "UPDATE"
		case pg_query.CmdType_CMD_DELETE:
			ev = "DELETE"
		}
		if ev != "" && !seen[ev] {
			seen[ev] = true
			out = append(out, ev)
		}
	}
	return out
}

// effectsOf asks for the triggers of t that fire for any of events (each
// trigger once: one may fire for INSERT OR UPDATE) and lists the events
// for which t has rewrite rules.
func effectsOf(c *policy.Check, ec policy.EffectsCatalog, t policy.Table, events []string) (triggers []policy.Trigger, rules []string) {
	seen := map[string]bool{}
	for _, ev := range events {
		eff, ok := ec.TableEffects(c.Ctx, t.String(), ev)
		if !ok {
			continue
		}
		if eff.Rules {
			rules = append(rules, ev)
		}
		for _, tr := range eff.Triggers {
			if !seen[tr.Name] {
				seen[tr.Name] = true
				triggers = append(triggers, tr)
			}
		}
	}
	return triggers, rules
}

// judgeMergeEffects judges the triggers that fire on a MERGE's target for
// each kind of its actions (INSERT, UPDATE, DELETE), a row-level one once
// per row of the MERGE's join: its source LEFT JOIN its target on the join
// condition (every source row, matched or not; FULL JOIN when a WHEN NOT
// MATCHED BY SOURCE clause acts on the target's other rows), estimated as
// a SELECT, in a transaction block too. The server refuses a MERGE into a
// table with rules.
func judgeMergeEffects(c *policy.Check, m *pg_query.MergeStmt) {
	t := policy.TableOf(m.Relation)
	if !c.Session.Migration || c.Session.Catalog == nil || t.Name == "" || c.Created(t) {
		return
	}
	ec, ok := c.Session.Catalog.(policy.EffectsCatalog)
	if !ok {
		return
	}
	triggers, _ := effectsOf(c, ec, t, mergeEvents(m))
	if len(triggers) == 0 {
		return
	}
	rows := func() (int64, bool) { return 0, false }
	if readOnlyWith(m.WithClause) {
		jt := pg_query.JoinType_JOIN_LEFT
		for _, w := range m.MergeWhenClauses {
			if w.GetMergeWhenClause().GetMatchKind() == pg_query.MergeMatchKind_MERGE_WHEN_NOT_MATCHED_BY_SOURCE {
				jt = pg_query.JoinType_JOIN_FULL
			}
		}
		join := &pg_query.Node{Node: &pg_query.Node_JoinExpr{JoinExpr: &pg_query.JoinExpr{Jointype: jt,
			Larg:  m.SourceRelation,
			Rarg:  &pg_query.Node{Node: &pg_query.Node_RangeVar{RangeVar: m.Relation}},
			Quals: m.JoinCondition}}}
		sql := selectOne(m.WithClause, []*pg_query.Node{join}, nil)
		rows = func() (int64, bool) { return c.Session.Catalog.EstimateRows(c.Ctx, sql) }
	}
	judgeTriggersOf(c, nil, t, triggers, rows, 1)
}

// judgeChange judges one data-changing statement n of a body (its
// variables stood in for), which changes target, and what target runs
// with it, and returns the rows one run of it changes of target; ok is
// false when they are unknown (reported as unsizable).
//
// Its rows: bodyRows's estimate, or, when target has rewrite rules for
// its events, EXPLAIN of n, whose every ModifyTable (its own and each
// rule's) counts r.times over. Then the triggers of target that fire for
// its events run, as many calls deeper: a row-level one once per row it
// changes (rows × r.times), a statement-level one once per run. A MERGE
// into a table with rules is refused by the server.
func judgeChange(c *policy.Check, r bodyRun, target policy.Table, verb string, n *pg_query.Node) (int64, bool) {
	var triggers []policy.Trigger
	var rules []string
	ec, _ := c.Session.Catalog.(policy.EffectsCatalog)
	if ec != nil && target.Name != "" && !c.Created(target) {
		triggers, rules = effectsOf(c, ec, target, eventsOf(n))
	}
	e := int64(0)
	if len(rules) > 0 && n.GetMergeStmt() == nil {
		changes, ok := ec.EstimateChanges(c.Ctx, policy.Deparse(n))
		if !ok {
			unsizable(c, target, r.via, "its "+verb+" of "+target.String()+" runs the rewrite rules of "+target.String()+", whose statements pgguard could not ask the planner for")
			return 0, false
		}
		for _, ch := range changes {
			rr := r
			if ch.Table.Name == target.Name && (target.Schema == "" || target.Schema == ch.Table.Schema) && strings.EqualFold(ch.Verb, verb) {
				e = max(e, ch.Rows)
			} else {
				rr.via += ", whose " + verb + " of " + target.String() + " runs a rewrite rule of it"
			}
			judgeBodyRows(c, rr, ch.Table, strings.ToUpper(ch.Verb), ch.Rows)
		}
	} else {
		rows, ok := bodyRows(c, n)
		if !ok {
			unsizable(c, target, r.via, "the planner could not estimate its "+verb+" of "+target.String())
			return 0, false
		}
		e = rows
		judgeBodyRows(c, r, target, verb, rows)
	}
	if len(triggers) > 0 {
		judgeTriggersOf(c, &r, target, triggers, func() (int64, bool) { return e, true }, r.times)
	}
	return e, true
}

// judgeBody judges the data-changing statements of one body.
func judgeBody(c *policy.Check, r bodyRun) {
	if r.depth > maxBodyDepth {
		unsizable(c, r.row, r.via, "functions nested more than "+strconv.Itoa(maxBodyDepth)+" calls deep")
		return
	}
	stmts, vars, dynamic, err := bodyStatements(r.fn)
	if err != nil {
		unsizable(c, r.row, r.via, "pgguard could not parse its body: "+err.Error())
		return
	}
	if dynamic != "" {
		unsizable(c, r.row, r.via, "it runs SQL built at run time (EXECUTE "+dynamic+")")
	}
	var calls []string
	callTimes := map[string]int64{}
	callArgs := map[string][]string{}
	for _, text := range stmts {
		tree, err := sqltext.PgParse(text)
		if err != nil {
			unsizable(c, r.row, r.via, "pgguard could not parse a statement of its body")
			continue
		}
		for _, raw := range tree.Stmts {
			node := raw.Stmt
			e := int64(0)
			if target, verb, ok := bodyChange(node); ok {
				subst := policy.CloneNode(node)
				if !substituteVars(subst, vars, r.fn, r.args, r.row) {
					unsizable(c, target, r.via, "its "+verb+" of "+target.String()+" refers to what pgguard cannot stand in for")
					continue
				}
				rows, ok := judgeChange(c, r, target, verb, subst)
				if !ok {
					continue
				}
				e = rows
			}
			for name, args := range callsIn(node) {
				if prev, seen := callArgs[name]; seen && strings.Join(prev, "\x00") != strings.Join(args, "\x00") {
					args = nil
				}
				callArgs[name] = args
				if r.times < 0 {
					callTimes[name] = -1
				} else if callTimes[name] >= 0 {
					callTimes[name] = max(callTimes[name], r.times*max(e, 1))
				}
				calls = append(calls, name)
			}
		}
	}
	if len(calls) == 0 {
		return
	}
	fc, ok := c.Session.Catalog.(policy.FunctionCatalog)
	if !ok {
		return
	}
	fns, ok := fc.FunctionBodies(c.Ctx, calls)
	if !ok {
		return
	}
	for _, f := range fns {
		if r.seen[f.Name] {
			continue
		}
		seen := map[string]bool{f.Name: true}
		for k := range r.seen {
			seen[k] = true
		}
		times := int64(-1)
		for _, name := range calls {
			if t := policy.ParseTableName(name); t.Name == f.Name[strings.LastIndexByte(f.Name, '.')+1:] {
				times = callTimes[name]
			}
		}
		judgeBody(c, bodyRun{fn: f, via: r.via + ", which calls function " + f.Name, times: times, args: argsOf(f, callArgs), depth: r.depth + 1, seen: seen})
	}
}

// judgeBodyRows reports a body statement that changes too many rows:
// rows per run, r.times runs.
func judgeBodyRows(c *policy.Check, r bodyRun, target policy.Table, verb string, rows int64) {
	if rows == 0 {
		return
	}
	if r.times < 0 {
		if rows > c.MaxDMLRows {
			r.times = 1
		} else {
			unsizable(c, target, r.via, "pgguard cannot tell how many times it runs its "+verb+" of "+target.String())
			return
		}
	}
	total := rows
	if r.times > 1 && rows <= c.MaxDMLRows {
		if total = rows * r.times; total/r.times != rows {
			total = c.MaxDMLRows + 1 // overflow: far too many
		}
	}
	if total <= c.MaxDMLRows {
		return
	}
	runs := ""
	if r.times > 1 {
		runs = fmt.Sprintf(", run about %d times (once per row),", r.times)
	}
	c.Report(policy.Report{
		Table: target,
		Lock:  policy.LockRowExclusive,
		// Run once per row, it writes as many row versions of a small
		// table as the statement changes rows.
		Unsized: r.times > 1,
		Message: fmt.Sprintf("The statement runs %s, whose %s of about %d rows of %s%s changes about %d rows of %s in one statement: it locks each of those rows until it commits and leaves as many dead row versions at once (bloat, replication lag); backfills of more than %s rows belong in batches outside the migration.",
			r.via, verb, rows, target, runs, total, target, thousands(c.MaxDMLRows)),
		Detail: "The row counts are the planner's estimates (EXPLAIN of the body's statement, its variables standing for unknown values, as in a generic plan).",
		Hint:   bodyHint(),
	})
}

// bodyChange reports the table and verb of a body statement that changes
// rows (UPDATE, DELETE, MERGE, INSERT).
func bodyChange(n *pg_query.Node) (policy.Table, string, bool) {
	switch s := n.GetNode().(type) {
	case *pg_query.Node_UpdateStmt:
		return policy.TableOf(s.UpdateStmt.Relation), "UPDATE", true
	case *pg_query.Node_DeleteStmt:
		return policy.TableOf(s.DeleteStmt.Relation), "DELETE", true
	case *pg_query.Node_MergeStmt:
		return policy.TableOf(s.MergeStmt.Relation), "MERGE", true
	case *pg_query.Node_InsertStmt:
		return policy.TableOf(s.InsertStmt.Relation), "INSERT", true
	}
	return policy.Table{}, "", false
}

// bodyRows estimates the rows one run of a body statement changes: an
// INSERT's rows are those of its VALUES or its SELECT.
func bodyRows(c *policy.Check, n *pg_query.Node) (int64, bool) {
	if ins := n.GetInsertStmt(); ins != nil {
		sel := ins.SelectStmt.GetSelectStmt()
		switch {
		case ins.SelectStmt == nil:
			return 1, true // DEFAULT VALUES
		case sel != nil && len(sel.ValuesLists) > 0:
			return int64(len(sel.ValuesLists)), true
		case sel != nil && len(sel.FromClause) == 0 && sel.Op == pg_query.SetOperation_SETOP_NONE && !callsFunction(sel.TargetList):
			return 1, true
		}
		s := policy.CloneNode(ins.SelectStmt)
		if ins.WithClause != nil && s.GetSelectStmt() != nil && s.GetSelectStmt().WithClause == nil {
			s.GetSelectStmt().WithClause = ins.WithClause
		}
		return c.Session.Catalog.EstimateRows(c.Ctx, policy.Deparse(s))
	}
	return c.Session.Catalog.EstimateRows(c.Ctx, policy.Deparse(n))
}

// bodyStatements returns the SQL statements of a body, its variables
// (name → type; "" for NEW and OLD, the trigger's row) and the first
// EXECUTE of text it cannot fold.
func bodyStatements(f policy.Function) (stmts []string, vars map[string]string, dynamic string, err error) {
	vars = map[string]string{}
	for i, a := range f.Args {
		if a.Name != "" {
			vars[strings.ToLower(a.Name)] = a.Type
		}
		vars["$"+strconv.Itoa(i+1)] = a.Type
	}
	if f.Language == "sql" {
		for _, st := range sqltext.SplitStrings(f.Body, false) {
			if sqltext.Classify(st.Text) != sqltext.ClassEmpty {
				stmts = append(stmts, st.Text)
			}
		}
		return stmts, vars, "", nil
	}
	ret := "void"
	if f.Trigger {
		ret = "trigger"
		for _, v := range []string{"tg_name", "tg_when", "tg_level", "tg_op", "tg_table_name", "tg_table_schema", "tg_relname"} {
			vars[v] = "text"
		}
		vars["tg_relid"], vars["tg_nargs"], vars["tg_argv"] = "oid", "int", "text[]"
	}
	js, err := policy.ParsePlpgsql(policy.PlpgsqlFunctionText(f, ret))
	if err != nil {
		return nil, nil, "", err
	}
	var tree any
	if err := json.Unmarshal([]byte(js), &tree); err != nil {
		return nil, nil, "", err
	}
	var walk func(v any, d int)
	walk = func(v any, d int) {
		if d > policy.MaxJSONDepth {
			return
		}
		switch t := v.(type) {
		case []any:
			for _, x := range t {
				walk(x, d+1)
			}
		case map[string]any:
			for k, x := range t {
				switch k {
				case "PLpgSQL_var":
					m, _ := x.(map[string]any)
					name, _ := m["refname"].(string)
					dt, _ := m["datatype"].(map[string]any)
					pt, _ := dt["PLpgSQL_type"].(map[string]any)
					typ, _ := pt["typname"].(string)
					if name != "" && typ != "" {
						vars[strings.ToLower(name)] = typ
					}
				case "PLpgSQL_rec", "PLpgSQL_row":
					m, _ := x.(map[string]any)
					if name, _ := m["refname"].(string); name != "" {
						vars[strings.ToLower(name)] = ""
					}
				case "PLpgSQL_stmt_dynexecute", "PLpgSQL_stmt_dynfors", "PLpgSQL_stmt_return_query", "PLpgSQL_stmt_open":
					key := "query"
					if k == "PLpgSQL_stmt_return_query" || k == "PLpgSQL_stmt_open" {
						key = "dynquery"
					}
					if q := policy.ExprQuery(x, key); q != "" {
						if sql, ok := policy.ConstantText(q); ok {
							stmts = append(stmts, sql)
						} else if dynamic == "" {
							dynamic = q
						}
					}
				case "PLpgSQL_expr":
					m, _ := x.(map[string]any)
					q, _ := m["query"].(string)
					mode, _ := m["parseMode"].(float64)
					switch {
					case q == "":
					case mode == policy.PlpgsqlStatement:
						stmts = append(stmts, q)
					default:
						if mode != policy.PlpgsqlExpression {
							if i := strings.Index(q, ":="); i >= 0 {
								q = q[i+2:]
							} else if i := strings.IndexByte(q, '='); i >= 0 {
								q = q[i+1:]
							}
						}
						stmts = append(stmts, "SELECT "+q)
					}
					continue
				}
				walk(x, d+1)
			}
		}
	}
	walk(tree, 0)
	return stmts, vars, dynamic, nil
}

// substituteVars replaces, in a body statement of f, each reference to a
// variable, an argument ($n, by name, or by name qualified with the
// function's, as pg_get_function_sqlbody writes them) or a field of NEW
// or OLD by a scalar subquery of its type, whose value the planner does
// not know. It reports false for a reference it cannot replace (a
// record's field outside a trigger).
func substituteVars(n *pg_query.Node, vars map[string]string, f policy.Function, values []string, row policy.Table) bool {
	args := f.Args
	short := strings.ToLower(f.Name[strings.LastIndexByte(f.Name, '.')+1:])
	ok := true
	// An argument whose value the call passes stands for that value.
	argExpr := func(i int) string {
		if i < len(values) && values[i] != "" {
			return "(" + values[i] + ")::" + args[i].Type
		}
		return "(SELECT NULL::" + args[i].Type + ")"
	}
	byName := map[string]int{}
	for i, a := range args {
		if a.Name != "" {
			byName[strings.ToLower(a.Name)] = i
		}
	}
	policy.Walk(n, func(x *pg_query.Node) bool {
		if p := x.GetParamRef(); p != nil {
			if p.Number < 1 || int(p.Number) > len(args) {
				ok = false
				return false
			}
			return replaceWith(x, argExpr(int(p.Number-1)), &ok)
		}
		cr := x.GetColumnRef()
		if cr == nil || len(cr.Fields) == 0 {
			return true
		}
		first := strings.ToLower(cr.Fields[0].GetString_().GetSval())
		if len(cr.Fields) == 2 && first == short && cr.Fields[1].GetString_() != nil {
			if i, isArg := byName[strings.ToLower(cr.Fields[1].GetString_().Sval)]; isArg {
				return replaceWith(x, argExpr(i), &ok)
			}
		}
		typ, isVar := vars[first]
		if !isVar {
			return true
		}
		switch {
		case typ != "" && len(cr.Fields) == 1:
			if i, isArg := byName[first]; isArg {
				return replaceWith(x, argExpr(i), &ok)
			}
			return replaceWith(x, "(SELECT NULL::"+typ+")", &ok)
		case typ == "" && (first == "new" || first == "old") && row.Name != "" && len(cr.Fields) == 2 && cr.Fields[1].GetString_() != nil:
			return replaceWith(x, "(SELECT pgguard_row."+policy.QuoteIdent(cr.Fields[1].GetString_().Sval)+" FROM "+row.String()+" AS pgguard_row LIMIT 1)", &ok)
		case typ == "":
			ok = false // a record's field whose type pgguard does not know
			return false
		}
		return true
	})
	return ok
}

// replaceWith makes x the expression expr; it returns false (do not walk
// into x).
func replaceWith(x *pg_query.Node, expr string, ok *bool) bool {
	tree, err := sqltext.PgParse("SELECT " + expr)
	if err != nil || len(tree.Stmts) != 1 {
		*ok = false
		return false
	}
	sel := tree.Stmts[0].Stmt.GetSelectStmt()
	if sel == nil || len(sel.TargetList) != 1 {
		*ok = false
		return false
	}
	x.Node = sel.TargetList[0].GetResTarget().GetVal().Node
	return false
}

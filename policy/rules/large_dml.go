package rules

import (
	"fmt"
	"github.com/pgguard/pgguard/policy"
	"strconv"
	"strings"

	"github.com/pgguard/pgguard/policy/sqltext"

	pg_query "github.com/pganalyze/pg_query_go/v6"
	"google.golang.org/protobuf/proto"
)

// largeDMLBatch is the batch size the recipe uses.
const largeDMLBatch = 10000

func init() {
	policy.Register(policy.Rule{
		ID:      "large-dml",
		Summary: "UPDATE or DELETE of a large share of a large table in one statement",
		// The field's rule: never backfill more than 100,000 rows in one
		// statement (large_dml.max_rows). The proxy also sees the
		// application's statements; only those that are not keyed
		// (WHERE id = $1) are estimated, and roles that legitimately do
		// large batch work get warn through a profile (rules.yaml).
		Default:       policy.LevelReject,
		SizeDependent: true,
		DML:           true,
		MayConcern:    mayConcernLargeDML,
		Check:         checkLargeDML,
		Verify: &policy.Verification{
			Statement: "UPDATE ledger SET currency = 'EUR'",
			Lock:      policy.LockRowExclusive,
			Work:      policy.WorkScan,
		},
	})
}

// dmlParts are the parts of an UPDATE or DELETE the rule looks at.
type dmlParts struct {
	verb    string
	rel     *pg_query.RangeVar
	where   *pg_query.Node
	from    []*pg_query.Node // UPDATE ... FROM or DELETE ... USING
	targets []*pg_query.Node // UPDATE's SET list
	with    *pg_query.WithClause
	node    *pg_query.Node // the statement
}

func checkLargeDML(c *policy.Check, n *pg_query.Node) {
	if c.Called {
		// A called function's statement: judgeCalls counted its rows,
		// times the runs of the body, for the statement that calls it.
		return
	}
	judgeCalls(c, n)
	judgeDDLCalls(c, n)
	if p, ok := dmlOf(n); ok {
		judgeLargeDML(c, &p, "")
	}
	if m := n.GetMergeStmt(); m != nil {
		judgeMergeEffects(c, m)
		if !judgeMergeUnderLock(c, m) {
			judgeMerge(c, m, "")
		}
	}
	if ins := n.GetInsertStmt(); ins != nil {
		judgeInsert(c, ins, "")
	}
	// A data-modifying WITH query (WITH d AS (DELETE FROM t RETURNING *)
	// SELECT ...) changes its rows like a statement of its own.
	for _, cte := range policy.WithQueries(n) {
		if p, ok := dmlOf(cte); ok {
			judgeLargeDML(c, &p, " (in a WITH query)")
		}
		if m := cte.GetMergeStmt(); m != nil {
			judgeMergeEffects(c, m)
			if !judgeMergeUnderLock(c, m) {
				judgeMerge(c, m, " (in a WITH query)")
			}
		}
		if ins := cte.GetInsertStmt(); ins != nil {
			judgeInsert(c, ins, " (in a WITH query)")
		}
	}
}

// judgeInsert judges an INSERT: what its table's rules and triggers run
// (judgeEffects), then an upsert's rows.
func judgeInsert(c *policy.Check, ins *pg_query.InsertStmt, in string) {
	t := policy.TableOf(ins.Relation)
	if t.Name != "" && !c.Created(t) {
		sql := c.SQL()
		if in != "" {
			sql = policy.Deparse(&pg_query.Node{Node: &pg_query.Node_InsertStmt{InsertStmt: ins}})
		}
		hint := func() string {
			return "-- outside the migration, in batches of about " + strconv.Itoa(largeDMLBatch) + " rows of what it inserts, each in its own transaction"
		}
		rows := func() (int64, bool) {
			ins := policy.CloneNode(&pg_query.Node{Node: &pg_query.Node_InsertStmt{InsertStmt: ins}})
			return bodyRows(c, ins)
		}
		oc := ins.OnConflictClause
		upsert := oc != nil && oc.Action == pg_query.OnConflictAction_ONCONFLICT_UPDATE
		if judgeEffects(c, &effectsQuestion{verb: "INSERT", in: in, t: t, sql: sql, hint: hint, rows: rows, upsert: upsert}) {
			return
		}
	}
	if in == "" {
		judgeUpsert(c, ins)
	}
}

// dmlOf returns the parts of an UPDATE or DELETE; ok is false for any
// other statement.
func dmlOf(n *pg_query.Node) (dmlParts, bool) {
	switch s := n.GetNode().(type) {
	case *pg_query.Node_UpdateStmt:
		u := s.UpdateStmt
		return dmlParts{verb: "UPDATE", rel: u.Relation, where: u.WhereClause, from: u.FromClause, targets: u.TargetList, with: u.WithClause, node: n}, true
	case *pg_query.Node_DeleteStmt:
		d := s.DeleteStmt
		return dmlParts{verb: "DELETE", rel: d.Relation, where: d.WhereClause, from: d.UsingClause, with: d.WithClause, node: n}, true
	}
	return dmlParts{}, false
}

// rowsQuestion is what judgeRows needs to know about a statement that
// changes rows of table t.
type rowsQuestion struct {
	verb string // UPDATE, DELETE, MERGE, INSERT ... ON CONFLICT DO UPDATE
	in   string // " (in a WITH query)" or ""
	t    policy.Table
	// estimate is the SQL whose EXPLAIN estimates the rows changed; count
	// is a SELECT that returns a row per row changed (or more), for a
	// bounded count; "" when there is none.
	estimate, count string
	// selective: the rows depend on a condition on the rows (a WHERE or
	// a join) that only an estimate can size; false means every row.
	selective bool
	// join: the rows come out of a join, whose estimate is the least sure;
	// others are the other tables the statement reads.
	join bool
	// guess, when set, says why the planner's estimate is a guess whatever
	// the statistics (rows of a set-returning function in a SELECT list):
	// an estimate of at most twice the limit is then counted.
	guess  string
	others []policy.Table
	// unselective describes a statement that changes every row of t.
	unselective string
	hint        func() string
}

// judgeLargeDML reports an UPDATE or DELETE that touches a large share of
// its table. A WITH query (in is set) is estimated on its own.
func judgeLargeDML(c *policy.Check, p *dmlParts, in string) {
	t := policy.TableOf(p.rel)
	if t.Name == "" || c.Created(t) {
		return
	}
	if c.HoldsExclusive(t) {
		// Whatever its size, the statement runs while every other
		// session's reads and writes of t wait for the transaction.
		c.Report(policy.Report{
			Table: t,
			Lock:  policy.LockAccessExclusive,
			Message: fmt.Sprintf("%s of %s in the transaction that holds the ACCESS EXCLUSIVE lock an earlier statement took on it (ALTER TABLE, LOCK, TRUNCATE): every read and write of %s waits for the whole scan and the rest of the transaction.",
				p.verb, t, t),
			Detail: "The lock is held until the transaction ends, so the data change cannot be made short by itself here.",
			Hint:   "-- commit the schema change first (a migration of its own); then\n" + largeDMLHint(c, p, t),
		})
		return
	}
	est := c.SQL()
	if in != "" {
		est = policy.Deparse(p.node)
	}
	if judgeEffects(c, &effectsQuestion{verb: p.verb, in: in, t: t, sql: est, hint: func() string { return largeDMLHint(c, p, t) }}) {
		return
	}
	if keyedWhere(p.where) {
		// An application's statement by key (WHERE id = $1) stays on the
		// fast path: estimating costs a round trip. In a migration's
		// session an equality is a key only when a unique index covers
		// it (status = 'done' is not one).
		if !c.Session.Migration || uniquelyKeyed(c, t, p) {
			return
		}
	}
	q := rowsQuestion{verb: p.verb, in: in, t: t, estimate: c.SQL(), count: dmlSelect(p),
		selective: p.where != nil && referencesColumns(p.where), join: len(p.from) > 0, others: tablesIn(p.from...),
		hint: func() string { return largeDMLHint(c, p, t) }}
	switch {
	case p.where == nil:
		q.unselective = fmt.Sprintf("%s%s of every row of %s (no WHERE clause)", p.verb, in, t)
	case !q.selective:
		q.unselective = fmt.Sprintf("%s%s of every row of %s (its WHERE clause does not depend on the row)", p.verb, in, t)
	}
	parts := []proto.Message{p.where, p.with}
	for _, f := range p.from {
		parts = append(parts, f)
	}
	if rowsFromFunction(parts...) {
		q.guess = functionRowsGuess
	} else if comparesExpression(p.where) {
		q.guess = expressionRowsGuess
	}
	if in != "" {
		// The estimate of the whole statement is not the WITH query's:
		// ask for the WITH query on its own.
		q.estimate = policy.Deparse(p.node)
	}
	judgeRows(c, &q)
}

// judgeRows estimates the rows a statement changes and reports it when
// they are more than large_dml.max_rows (the limit is inclusive: "never
// more than 100,000 rows" allows 100,000). In a migration's session an
// estimate that the statistics cannot back (stale or missing statistics,
// a join, a figure near the limit on either side) is checked by a bounded
// count, and a statement pgguard cannot estimate at all is refused.
func judgeRows(c *policy.Check, q *rowsQuestion) {
	sc := c.Session
	var rows int64
	known, counted := false, false
	if sc.Catalog != nil && q.estimate != "" {
		rows, known = sc.Catalog.EstimateRows(c.Ctx, q.estimate)
	}
	var detail string
	if known && sc.Migration && rows <= 2*c.MaxDMLRows {
		if why := untrustedEstimate(c, q, rows); why != "" {
			n, ok := countRows(c, q)
			switch {
			case ok:
				rows, counted = n, true
			case rows > c.MaxDMLRows, boundedBySize(c, q.t):
			case why == q.guess && why == functionRowsGuess:
				// Only the planner's guess of a function's rows is in
				// doubt, and the function cannot be run to count them
				// (SELECT gen_random_uuid(), ...): the estimate stands.
				// (Not a WHERE on an expression that runs a volatile
				// function or an operator of user code: its default
				// selectivity took 300,000 rows of 300,000 for 100,000.)
			default:
				detail = "The planner estimated " + strconv.FormatInt(rows, 10) + " rows, but " + why + ", and pgguard could not count them (the statement calls functions it does not know to be free of side effects); run ANALYZE " + q.t.String() + " first."
				rows = -1 // unknown, and it may be large
			}
		}
	}
	var what string
	switch {
	case rows < 0:
		what = fmt.Sprintf("%s%s of %s, whose row count the statistics cannot back", q.verb, q.in, q.t)
	case known && rows <= c.MaxDMLRows:
		return
	case counted:
		what = fmt.Sprintf("%s%s of more than %s rows of %s (counted: the planner's estimate was not sure enough)", q.verb, q.in, thousands(c.MaxDMLRows), q.t)
	case known:
		what = fmt.Sprintf("%s%s of about %d rows of %s", q.verb, q.in, rows, q.t)
	case q.unselective != "":
		what = q.unselective
	case sc.Migration && sc.Unestimable != "":
		what = fmt.Sprintf("%s%s of %s, which pgguard cannot estimate where it stands (%s)", q.verb, q.in, q.t, sc.Unestimable)
		detail = "In a migration's session pgguard estimates every data change that is not by a unique key; send this statement on its own (its own Query, or its own Parse/Bind/Execute/Sync with its parameters in text form) so that it can be estimated."
	default:
		return // a selective WHERE: an ordinary application statement
	}
	r := policy.Report{
		Table: q.t,
		Lock:  policy.LockRowExclusive,
		Message: fmt.Sprintf("%s in one statement locks each of those rows until it commits, blocking every other write to them, and leaves as many dead row versions at once (bloat, replication lag); backfills of more than %s rows belong in batches outside the migration.",
			what, thousands(c.MaxDMLRows)),
		Detail: detail,
		Hint:   q.hint(),
		// Counted rows, or rows nothing can size, are not bounded by
		// the table's size as the catalog knows it (a foreign table's
		// is none: its rows are another server's).
		Unsized: counted || rows < 0,
	}
	if known && !counted && rows >= 0 {
		r.Detail = policy.JoinSentences(r.Detail, "The row count is the planner's estimate (EXPLAIN).")
	}
	if sp, ok := sc.Catalog.(policy.SizeProvenance); ok && (known || counted) {
		if from := sp.SizesFrom(c.Ctx, q.t.String()); from != "" {
			r.Detail = policy.JoinSentences(r.Detail, "The count is scaled to the size of "+q.t.String()+" in "+from+", not this database's.")
		}
	}
	c.Report(r)
}

// untrustedEstimate says why an estimate of at most twice the limit may be
// on the wrong side of it: the statistics of the table, or of a table it
// joins, are stale or missing (one ANALYZE ago it held 1,000 rows, it
// holds 299,000 now), the rows come out of a join (whose estimates are the
// least sure), or the estimate is near the limit. "" when it can be
// trusted.
func untrustedEstimate(c *policy.Check, q *rowsQuestion, rows int64) string {
	if rc, ok := c.Session.Catalog.(policy.RowCounter); ok {
		for _, t := range append([]policy.Table{q.t}, q.others...) {
			if why, ok := rc.StaleStatistics(c.Ctx, t.String()); ok && why != "" {
				return why
			}
		}
	}
	switch {
	case q.guess != "":
		return q.guess
	case q.join && rows*10 >= c.MaxDMLRows:
		return "the rows come out of a join, whose estimate is the least sure"
	case rows*2 >= c.MaxDMLRows:
		return "the estimate is near the limit"
	}
	return ""
}

// tablesIn lists the tables a FROM list (or a MERGE's source) names.
func tablesIn(nodes ...*pg_query.Node) []policy.Table {
	var out []policy.Table
	for _, n := range nodes {
		policy.Walk(n, func(x *pg_query.Node) bool {
			if rv := x.GetRangeVar(); rv != nil {
				if t := policy.TableOf(rv); t.Name != "" {
					out = append(out, t)
				}
			}
			return true
		})
	}
	return out
}

// countRows counts the rows a statement changes, up to the limit and one
// more, when its SELECT form calls no function that may have side effects
// (the count runs it). It reads at most what the statement itself reads.
func countRows(c *policy.Check, q *rowsQuestion) (int64, bool) {
	rc, ok := c.Session.Catalog.(policy.RowCounter)
	if !ok || q.count == "" || !sideEffectFree(c, q.count) {
		return 0, false
	}
	return rc.CountRows(c.Ctx, q.count, c.MaxDMLRows+1)
}

// boundedBySize reports whether table t holds no more rows than the limit
// by the larger of its planner and live-tuple counts: a statement cannot
// change a row twice, so it then changes few enough whatever it does.
func boundedBySize(c *policy.Check, t policy.Table) bool {
	size, ok := c.Session.Catalog.TableSize(c.Ctx, t.String())
	return ok && size.Rows <= c.MaxDMLRows
}

// sideEffectFree reports whether a SELECT calls only functions the catalog
// says are immutable or stable, and only built-in operators (an operator
// of user code runs its function, which may be volatile: the count would
// run it).
func sideEffectFree(c *policy.Check, sql string) bool {
	tree, err := sqltext.PgParse(sql)
	if err != nil {
		return false
	}
	free := true
	policy.Walk(tree, func(n *pg_query.Node) bool {
		if f := n.GetFuncCall(); f != nil {
			if v := c.FunctionVolatility(policy.NameList(f.Funcname)); v != policy.VolatilityImmutable && v != policy.VolatilityStable {
				free = false
			}
		}
		// (BETWEEN's name is the keyword; its operators are <= and >=.)
		if e := n.GetAExpr(); e != nil && len(e.Name) > 0 && !betweenKind(e.Kind) {
			name := make([]string, len(e.Name))
			for i, part := range e.Name {
				name[i] = part.GetString_().GetSval()
			}
			if !policy.BuiltinOperator(name) {
				free = false
			}
		}
		return free
	})
	return free
}

func betweenKind(k pg_query.A_Expr_Kind) bool {
	switch k {
	case pg_query.A_Expr_Kind_AEXPR_BETWEEN, pg_query.A_Expr_Kind_AEXPR_NOT_BETWEEN,
		pg_query.A_Expr_Kind_AEXPR_BETWEEN_SYM, pg_query.A_Expr_Kind_AEXPR_NOT_BETWEEN_SYM:
		return true
	}
	return false
}

// dmlSelect is the SELECT form of an UPDATE or DELETE: one row per row it
// changes (more through a join), "" when there is none (WHERE CURRENT OF,
// a WITH query that changes data itself).
func dmlSelect(p *dmlParts) string {
	if p.where.GetCurrentOfExpr() != nil || !readOnlyWith(p.with) {
		return ""
	}
	from := []*pg_query.Node{{Node: &pg_query.Node_RangeVar{RangeVar: p.rel}}}
	return selectOne(p.with, append(from, p.from...), p.where)
}

// selectOne deparses SELECT 1 FROM from WHERE where, with with's queries,
// from copies of the parts.
func selectOne(with *pg_query.WithClause, from []*pg_query.Node, where *pg_query.Node) string {
	sel := &pg_query.SelectStmt{
		TargetList:  []*pg_query.Node{pg_query.MakeResTargetNodeWithVal(pg_query.MakeAConstIntNode(1, -1), -1)},
		FromClause:  from,
		WhereClause: where,
		WithClause:  with,
		Op:          pg_query.SetOperation_SETOP_NONE,
		LimitOption: pg_query.LimitOption_LIMIT_OPTION_DEFAULT,
	}
	return policy.Deparse(policy.CloneNode(&pg_query.Node{Node: &pg_query.Node_SelectStmt{SelectStmt: sel}}))
}

// readOnlyWith reports whether a WITH clause (or none) holds only SELECTs.
func readOnlyWith(w *pg_query.WithClause) bool {
	if w == nil {
		return true
	}
	for _, cte := range w.Ctes {
		if q := cte.GetCommonTableExpr().GetCtequery(); q == nil || q.GetSelectStmt() == nil {
			return false
		}
	}
	return true
}

// uniquelyKeyed reports whether the catalog knows a unique index (valid,
// not partial, over plain columns) whose every column the WHERE clause
// compares with a constant or a parameter (by = or IN) of a type the
// column's equality is exact for: then the statement changes at most one
// row per combination of the values, and it is a key while those number
// no more than the limit (an IN list of 100,001 ids changes 100,001 rows;
// a (a, b) key with 400 values for each, 160,000).
func uniquelyKeyed(c *policy.Check, t policy.Table, p *dmlParts) bool {
	kc, ok := c.Session.Catalog.(policy.KeyCatalog)
	if !ok || c.Session.Catalog == nil {
		return false
	}
	cols := keyColumns(p)
	if len(cols) == 0 {
		return false
	}
	keys, ok := kc.UniqueKeys(c.Ctx, t.String())
	if !ok {
		return false
	}
	for _, k := range keys {
		covered := len(k) > 0
		combos := int64(1)
		for _, col := range k {
			n, ok := cols[col]
			covered = covered && ok
			if ok {
				if combos > c.MaxDMLRows/max(n, 1) {
					combos = c.MaxDMLRows + 1
				} else {
					combos *= max(n, 1)
				}
			}
		}
		if covered && combos <= c.MaxDMLRows {
			return true
		}
	}
	return false
}

// keyColumns maps the target table's columns that a top-level conjunct of
// the WHERE clause compares with a constant or a parameter by = or IN to
// the fewest values a conjunct compares it with (1 for =, the length of an
// IN list). A column qualified by another relation's name is not the
// target's; an unqualified one is taken for the target's only without FROM
// or USING. A value cast to a type PostgreSQL compares the column in by
// casting the column to it, not one to one (float4 and float8: 150,000
// numerics are one double; bpchar: trailing spaces do not count), makes
// no key.
func keyColumns(p *dmlParts) map[string]int64 {
	qual := p.rel.Relname
	if p.rel.Alias != nil && p.rel.Alias.Aliasname != "" {
		qual = p.rel.Alias.Aliasname
	}
	col := func(n *pg_query.Node) string {
		cr := n.GetColumnRef()
		if cr == nil || len(cr.Fields) == 0 {
			return ""
		}
		f := cr.Fields
		name := f[len(f)-1].GetString_().GetSval()
		switch {
		case len(f) == 1 && len(p.from) == 0:
			return name
		case len(f) >= 2 && f[len(f)-2].GetString_().GetSval() == qual:
			return name
		}
		return ""
	}
	out := map[string]int64{}
	eachComparison(p.where, func(column, value *pg_query.Node) {
		name := col(column)
		if name == "" || lossyKeyValue(value) {
			return
		}
		n := int64(1)
		if l := value.GetList(); l != nil {
			n = int64(len(l.Items))
		}
		if old, ok := out[name]; !ok || n < old {
			out[name] = n
		}
	})
	return out
}

// lossyKeyValue reports whether a value (or any value of an IN list) is
// cast to a type whose comparison with a key column is not one to one.
func lossyKeyValue(value *pg_query.Node) bool {
	items := []*pg_query.Node{value}
	if l := value.GetList(); l != nil {
		items = l.Items
	}
	for _, v := range items {
		tc := v.GetTypeCast()
		if tc == nil || tc.TypeName == nil {
			continue
		}
		names := tc.TypeName.Names
		if len(names) == 0 {
			continue
		}
		switch names[len(names)-1].GetString_().GetSval() {
		case "float4", "float8", "bpchar":
			return true
		}
	}
	return false
}

// eachEquality calls f with the column side of every top-level conjunct of
// where that compares a column with a constant or a parameter by = or IN.
func eachEquality(where *pg_query.Node, f func(column *pg_query.Node)) {
	eachComparison(where, func(column, _ *pg_query.Node) { f(column) })
}

// eachComparison is eachEquality with the value side too (a List for IN).
func eachComparison(where *pg_query.Node, f func(column, value *pg_query.Node)) {
	for _, conj := range dmlConjuncts(where) {
		e := conj.GetAExpr()
		if e == nil || e.Lexpr == nil || e.Rexpr == nil {
			continue
		}
		switch {
		case e.Kind == pg_query.A_Expr_Kind_AEXPR_IN:
		case e.Kind == pg_query.A_Expr_Kind_AEXPR_OP && len(e.Name) == 1 && e.Name[0].GetString_().GetSval() == "=":
		default:
			continue
		}
		switch {
		case e.Lexpr.GetColumnRef() != nil && isValue(e.Rexpr):
			f(e.Lexpr, e.Rexpr)
		case e.Rexpr.GetColumnRef() != nil && isValue(e.Lexpr):
			f(e.Rexpr, e.Lexpr)
		}
	}
}

// isValue: a constant, a parameter or a list of them, possibly cast.
func isValue(n *pg_query.Node) bool {
	if tc := n.GetTypeCast(); tc != nil {
		n = tc.Arg
	}
	return n.GetAConst() != nil || n.GetParamRef() != nil || n.GetList() != nil
}

// judgeMerge sizes a MERGE by the rows it may update or delete: those of
// the target that its join condition matches (all of them when a WHEN NOT
// MATCHED BY SOURCE clause changes the unmatched ones too). A MERGE that
// only inserts changes no existing row.
func judgeMerge(c *policy.Check, m *pg_query.MergeStmt, in string) {
	t := policy.TableOf(m.Relation)
	if t.Name == "" || c.Created(t) {
		return
	}
	changes, bySource := false, false
	for _, w := range m.MergeWhenClauses {
		mw := w.GetMergeWhenClause()
		if mw == nil || (mw.CommandType != pg_query.CmdType_CMD_UPDATE && mw.CommandType != pg_query.CmdType_CMD_DELETE) {
			continue
		}
		changes = true
		bySource = bySource || mw.MatchKind == pg_query.MergeMatchKind_MERGE_WHEN_NOT_MATCHED_BY_SOURCE
	}
	if !changes {
		return
	}
	q := rowsQuestion{verb: "MERGE", in: in, t: t, selective: !bySource, join: true, others: tablesIn(m.SourceRelation),
		hint: func() string {
			return "-- outside the migration, in batches of about " + strconv.Itoa(largeDMLBatch) + " rows of its source (USING (SELECT ... ORDER BY key\n" +
				"-- LIMIT " + strconv.Itoa(largeDMLBatch) + ") picking the next range of the key each time), each in its own transaction"
		}}
	if bySource {
		q.unselective = fmt.Sprintf("MERGE%s into %s that changes every row of it (WHEN NOT MATCHED BY SOURCE)", in, t)
	}
	if rowsFromFunction(m.SourceRelation, m.JoinCondition, m.WithClause) {
		q.guess = functionRowsGuess
	}
	if readOnlyWith(m.WithClause) {
		jt := pg_query.JoinType_JOIN_INNER
		if bySource {
			jt = pg_query.JoinType_JOIN_LEFT
		}
		join := &pg_query.Node{Node: &pg_query.Node_JoinExpr{JoinExpr: &pg_query.JoinExpr{Jointype: jt,
			Larg:  &pg_query.Node{Node: &pg_query.Node_RangeVar{RangeVar: m.Relation}},
			Rarg:  m.SourceRelation,
			Quals: m.JoinCondition}}}
		q.count = selectOne(m.WithClause, []*pg_query.Node{join}, nil)
		q.estimate = q.count
	}
	judgeRows(c, &q)
}

// judgeUpsert sizes INSERT ... SELECT ... ON CONFLICT DO UPDATE by the rows
// of its SELECT: each may meet a conflict and update an existing row (at
// most once each). An upsert of VALUES changes as many rows as it lists.
func judgeUpsert(c *policy.Check, ins *pg_query.InsertStmt) {
	oc := ins.OnConflictClause
	sel := ins.SelectStmt.GetSelectStmt()
	if oc == nil || oc.Action != pg_query.OnConflictAction_ONCONFLICT_UPDATE || sel == nil {
		return
	}
	if len(sel.ValuesLists) > 0 && int64(len(sel.ValuesLists)) <= c.MaxDMLRows {
		// VALUES of at most the limit's rows: at most as many updates. A
		// bulk upsert of more (upsert_all, bulkCreate) is sized like one
		// from a SELECT: by its rows.
		return
	}
	t := policy.TableOf(ins.Relation)
	if t.Name == "" || c.Created(t) {
		return
	}
	q := rowsQuestion{verb: "INSERT ... ON CONFLICT DO UPDATE", t: t, selective: true, others: tablesIn(ins.SelectStmt),
		hint: func() string {
			return "-- outside the migration, in batches of about " + strconv.Itoa(largeDMLBatch) + " rows of the SELECT (ORDER BY its key,\n" +
				"-- WHERE key > the last batch's last key, LIMIT " + strconv.Itoa(largeDMLBatch) + "), each in its own transaction"
		}}
	if readOnlyWith(ins.WithClause) && readOnlyWith(sel.WithClause) {
		s := policy.CloneNode(ins.SelectStmt)
		if ins.WithClause != nil && sel.WithClause == nil {
			s.GetSelectStmt().WithClause = ins.WithClause
		}
		if sel := policy.Deparse(s); sel != "" {
			// The estimate is of the same wrapped SELECT as the count
			// (the same rows): policy.UpsertSourceAlias marks it as the
			// rows of a SELECT, which may come from any of its tables,
			// not from the first table of its FROM as in the SELECT
			// forms of UPDATE, DELETE and MERGE (their target).
			q.count = "SELECT 1 FROM (" + sel + ") AS " + policy.UpsertSourceAlias
			q.estimate = q.count
		}
	}
	if len(sel.FromClause) > 0 && sel.WhereClause == nil && sel.Op == pg_query.SetOperation_SETOP_NONE {
		q.unselective = "INSERT ... ON CONFLICT DO UPDATE of " + t.String() + " from every row of its SELECT (no WHERE clause)"
		q.selective = false
	}
	if len(sel.FromClause) == 0 && len(sel.ValuesLists) == 0 && sel.Op == pg_query.SetOperation_SETOP_NONE {
		if !callsFunction(sel.TargetList) {
			return // SELECT of expressions: one row
		}
	}
	if rowsFromFunction(ins.SelectStmt, ins.WithClause) {
		q.guess = functionRowsGuess
	}
	judgeRows(c, &q)
}

// judgeMergeUnderLock reports a MERGE into a table the transaction holds
// an ACCESS EXCLUSIVE lock on, as judgeLargeDML does an UPDATE or DELETE:
// whatever rows it changes, every other session waits for the rest of the
// transaction. It reports whether it did.
func judgeMergeUnderLock(c *policy.Check, m *pg_query.MergeStmt) bool {
	t := policy.TableOf(m.Relation)
	if t.Name == "" || c.Created(t) || !c.HoldsExclusive(t) {
		return false
	}
	c.Report(policy.Report{
		Table: t,
		Lock:  policy.LockAccessExclusive,
		Message: fmt.Sprintf("MERGE into %s in the transaction that holds the ACCESS EXCLUSIVE lock an earlier statement took on it (ALTER TABLE, LOCK, TRUNCATE): every read and write of %s waits for the whole statement and the rest of the transaction.",
			t, t),
		Detail: "The lock is held until the transaction ends, so the data change cannot be made short by itself here.",
		Hint:   "-- commit the schema change first (a migration of its own); then run the MERGE in its own transaction,\n-- in batches of about " + strconv.Itoa(largeDMLBatch) + " rows of its source if it changes many rows",
	})
	return true
}

// functionRowsGuess is why an estimate of rows that may come out of a
// set-returning function is a guess.
const functionRowsGuess = "the rows may come out of a set-returning function, whose row count the planner guesses"

// expressionRowsGuess is why an estimate of rows picked by a condition on
// an expression of columns is a guess.
const expressionRowsGuess = "the WHERE clause compares an expression of columns (a cast, a function, ->>), for which the planner has no statistics and guesses (0.5% of the rows for =)"

// comparesExpression reports whether a WHERE clause compares, or tests for
// NULL, an expression that reads columns but is not a column (lower(email)
// = $1, data->>'kind' = 'legacy', x::float8 = 0.1, coalesce(n, 0) = 0), or
// a column with a value of a type PostgreSQL casts the column to
// (lossyKeyValue). Without an expression index or extended statistics on
// it, the planner's selectivity is a default, so 150,000 rows of 150,000
// look like 750. Subqueries are left out (a scalar subquery is a value).
func comparesExpression(where *pg_query.Node) bool {
	expr := func(n *pg_query.Node) bool {
		return n != nil && n.GetColumnRef() == nil && n.GetSubLink() == nil && referencesColumns(n)
	}
	found := false
	policy.Walk(where, func(x *pg_query.Node) bool {
		if x.GetSubLink() != nil {
			return false
		}
		if e := x.GetAExpr(); e != nil && (expr(e.Lexpr) || expr(e.Rexpr)) {
			found = true
		}
		// x = 0.1::float8 of a numeric x: PostgreSQL casts the column.
		if e := x.GetAExpr(); e != nil && e.Lexpr != nil && e.Rexpr != nil &&
			((e.Lexpr.GetColumnRef() != nil && lossyKeyValue(e.Rexpr)) || (e.Rexpr.GetColumnRef() != nil && lossyKeyValue(e.Lexpr))) {
			found = true
		}
		if nt := x.GetNullTest(); nt != nil && expr(nt.Arg) {
			found = true
		}
		return !found
	})
	return found
}

// rowsFromFunction reports whether rows may come out of a set-returning
// function anywhere in msgs: a function in FROM (unnest($1) AS u) or in a
// SELECT list (SELECT generate_series(1, n), SELECT unnest(array(...))),
// in a subquery or a WITH query too. The planner guesses their count (10
// or 100 rows of unnest of an array it cannot see), so an estimate that
// depends on them is checked by a count.
func rowsFromFunction(msgs ...proto.Message) bool {
	found := false
	for _, m := range msgs {
		policy.Walk(m, func(x *pg_query.Node) bool {
			if x.GetRangeFunction() != nil || x.GetRangeTableFunc() != nil {
				found = true
			}
			if sel := x.GetSelectStmt(); sel != nil && callsFunction(sel.TargetList) {
				found = true
			}
			return !found
		})
	}
	return found
}

// callsFunction reports whether any of nodes calls a function outside a
// subquery (a scalar subquery returns one row whatever it calls).
func callsFunction(nodes []*pg_query.Node) bool {
	found := false
	for _, n := range nodes {
		policy.Walk(n, func(x *pg_query.Node) bool {
			if x.GetSubLink() != nil {
				return false
			}
			if x.GetFuncCall() != nil {
				found = true
			}
			return !found
		})
	}
	return found
}

// mayConcernLargeDML is false for an application's statement by key
// (keyedWhereText); a COPY or an INSERT that reaches it (writesRows) always
// concerns it.
func mayConcernLargeDML(text string) bool {
	if sqltext.FirstWordIs(text, "copy") || sqltext.FirstWordIs(text, "insert") {
		return true
	}
	return !keyedWhereText(text)
}

// keyedWhereText is keyedWhere on the text, without a parse: it is true
// for an UPDATE or DELETE whose WHERE (outside parentheses) starts with
// "column = value" or "column IN (values)", possibly inside parentheses
// and with a qualified column (Prisma's WHERE ("public"."User"."id" = $1
// AND 1=1)), and whose comparison is a conjunct of the WHERE: it is
// followed by AND, RETURNING or the end, and no OR or operator applies to
// a group holding it. That is the shape of an application's statement
// about a few rows. Anything else is false, and the statement gets parsed.
func keyedWhereText(text string) bool {
	lx := sqltext.Lexer{Src: text}
	next := func() sqltext.Token {
		for {
			t := lx.Next()
			if t.Kind != sqltext.TokComment {
				return t
			}
		}
	}
	other := func(t sqltext.Token, c byte) bool {
		return t.Kind == sqltext.TokOther && t.End == t.Start+1 && text[t.Start] == c
	}
	depth := 0
	for found := false; !found; {
		t := next()
		switch t.Kind {
		case sqltext.TokEOF, sqltext.TokSemi:
			return false
		case sqltext.TokOpen:
			depth++
		case sqltext.TokClose:
			depth--
		case sqltext.TokWord:
			found = depth == 0 && t.WordIs(text, "where")
		}
	}
	t := next()
	level := 0 // parentheses opened right after WHERE
	for t.Kind == sqltext.TokOpen {
		level++
		t = next()
	}
	// column, table.column or schema.table.column
	if t.Kind != sqltext.TokWord && t.Kind != sqltext.TokQuoted {
		return false
	}
	op := next()
	for other(op, '.') {
		if c := next(); c.Kind != sqltext.TokWord && c.Kind != sqltext.TokQuoted {
			return false
		}
		op = next()
	}
	switch {
	case other(op, '='):
		v := next()
		t = next()
		switch {
		case v.Kind == sqltext.TokString:
		case v.Kind == sqltext.TokOther && v.End > v.Start+1 && text[v.Start] == '$':
		case v.Kind == sqltext.TokOther && text[v.Start] >= '0' && text[v.Start] <= '9':
			// The lexer returns a number digit by digit.
			for end := v.End; t.Kind == sqltext.TokOther && t.Start == end && (other(t, '.') || (text[t.Start] >= '0' && text[t.Start] <= '9')); t = next() {
				end = t.End
			}
		default:
			return false
		}
		for other(t, ':') { // value::type
			if !other(next(), ':') {
				return false
			}
			if ty := next(); ty.Kind != sqltext.TokWord && ty.Kind != sqltext.TokQuoted {
				return false
			}
			t = next()
		}
	case op.Kind == sqltext.TokWord && op.WordIs(text, "in"):
		if next().Kind != sqltext.TokOpen {
			return false
		}
		first := next()
		for _, kw := range []string{"select", "with", "values", "table"} {
			if first.WordIs(text, kw) {
				return false // a sub-select, not a list of values
			}
		}
		for d, t := 1, first; d > 0; t = next() {
			switch t.Kind {
			case sqltext.TokEOF, sqltext.TokSemi:
				return false
			case sqltext.TokOpen:
				d++
			case sqltext.TokClose:
				d--
			}
		}
		t = next()
	default:
		return false
	}
	// t follows the comparison, at depth level. After it, and after each
	// parenthesis that closes a group holding it, only AND, RETURNING, a
	// closing parenthesis or the end may come; inside those groups, no OR.
	cur, low, join := level, level, true
	for ; ; t = next() {
		if t.Kind == sqltext.TokEOF || t.Kind == sqltext.TokSemi {
			return cur == 0
		}
		if join {
			switch {
			case t.WordIs(text, "and"):
				join = false
			case t.WordIs(text, "returning"):
				return cur == 0
			case t.Kind == sqltext.TokClose:
				if cur--; cur < 0 {
					return false
				}
				low = cur
			default:
				return false
			}
			continue
		}
		switch {
		case t.Kind == sqltext.TokOpen:
			cur++
		case t.Kind == sqltext.TokClose:
			if cur--; cur < low {
				if cur < 0 {
					return false
				}
				low, join = cur, true
			}
		case t.WordIs(text, "or") && cur <= low:
			return false
		}
	}
}

// keyedWhere reports whether a WHERE clause has a top-level conjunct that
// compares a column with a constant or a parameter by = or IN: the shape of
// an application's statement about a few rows.
func keyedWhere(where *pg_query.Node) bool {
	keyed := false
	eachEquality(where, func(*pg_query.Node) { keyed = true })
	return keyed
}

// referencesColumns reports whether an expression mentions any column.
func referencesColumns(expr *pg_query.Node) bool {
	found := false
	policy.Walk(expr, func(n *pg_query.Node) bool {
		if n.GetColumnRef() != nil {
			found = true
		}
		return !found
	})
	return found
}

// largeDMLHint is the same statement in batches of largeDMLBatch rows,
// picked by ctid; it must make each batch's rows leave the batch query,
// or the batches would never end.
func largeDMLHint(c *policy.Check, p *dmlParts, t policy.Table) string {
	qual := t.Name
	if p.rel.Alias != nil && p.rel.Alias.Aliasname != "" {
		qual = p.rel.Alias.Aliasname
	}
	qctid := policy.QuoteIdent(qual) + ".ctid"
	done := ""
	if p.verb == "UPDATE" {
		var ok bool
		if done, ok = updateDonePredicate(p); !ok {
			return keyRangeHint(c, p, t)
		}
	}
	rv := policy.CloneNode(&pg_query.Node{Node: &pg_query.Node_RangeVar{RangeVar: p.rel}})
	sel := &pg_query.SelectStmt{
		TargetList: []*pg_query.Node{pg_query.MakeResTargetNodeWithVal(
			pg_query.MakeColumnRefNode([]*pg_query.Node{pg_query.MakeStrNode(qual), pg_query.MakeStrNode("ctid")}, -1), -1)},
		FromClause: []*pg_query.Node{rv},
	}
	for _, f := range p.from {
		sel.FromClause = append(sel.FromClause, policy.CloneNode(f))
	}
	sub := policy.Deparse(&pg_query.Node{Node: &pg_query.Node_SelectStmt{SelectStmt: sel}})
	var conds []string
	origWhere := ""
	if p.where != nil {
		origWhere = "(" + policy.DeparseExpr(p.where) + ")"
		conds = append(conds, origWhere)
	}
	if done != "" {
		conds = append(conds, done)
	}
	if len(conds) > 0 {
		sub += " WHERE " + strings.Join(conds, " AND ")
	}
	sub += fmt.Sprintf(" LIMIT %d", largeDMLBatch)
	head := dmlHead(c, p)
	if head == "" || sub == "" {
		return keyRangeHint(c, p, t)
	}
	batch := head + " WHERE " + qctid + " = ANY (ARRAY(" + sub + "))"
	if len(p.from) > 0 && origWhere != "" {
		batch += " AND " + origWhere
	}
	return fmt.Sprintf("-- outside the migration, in batches of %d rows (pause between batches if replicas lag):\n%s\n%s;", largeDMLBatch, policy.StepBackfill, batch)
}

// dmlHead deparses the statement without its WHERE and RETURNING clauses.
func dmlHead(c *policy.Check, p *dmlParts) string {
	var node *pg_query.Node
	switch p.verb {
	case "UPDATE":
		u := &pg_query.UpdateStmt{Relation: p.rel, TargetList: p.targets, FromClause: p.from}
		node = &pg_query.Node{Node: &pg_query.Node_UpdateStmt{UpdateStmt: u}}
	case "DELETE":
		d := &pg_query.DeleteStmt{Relation: p.rel, UsingClause: p.from}
		node = &pg_query.Node{Node: &pg_query.Node_DeleteStmt{DeleteStmt: d}}
	}
	// The new statement shares the original's parts: deparse a copy.
	return policy.Deparse(policy.CloneNode(node))
}

// updateDonePredicate returns a condition that rows already updated no
// longer meet: "" when the WHERE clause already has one (col IS NULL on
// a column the UPDATE sets), col IS DISTINCT FROM <constant> when every
// new value is a constant; ok is false otherwise.
func updateDonePredicate(p *dmlParts) (string, bool) {
	set := map[string]*pg_query.Node{}
	for _, tn := range p.targets {
		rt := tn.GetResTarget()
		if rt == nil || len(rt.Indirection) > 0 || rt.Val.GetMultiAssignRef() != nil {
			return "", false
		}
		set[rt.Name] = rt.Val
	}
	for _, conj := range dmlConjuncts(p.where) {
		nt := conj.GetNullTest()
		if nt == nil || nt.Nulltesttype != pg_query.NullTestType_IS_NULL {
			continue
		}
		if col := dmlColumnName(nt.Arg); col != "" && set[col] != nil && !isNullConst(set[col]) {
			return "", true
		}
	}
	var parts []string
	for _, tn := range p.targets {
		rt := tn.GetResTarget()
		if !dmlIsConstant(rt.Val) {
			return "", false
		}
		parts = append(parts, policy.QuoteIdent(rt.Name)+" IS DISTINCT FROM "+policy.DeparseExpr(rt.Val))
	}
	if len(parts) == 0 {
		return "", false
	}
	if len(parts) == 1 {
		return parts[0], true
	}
	return "(" + strings.Join(parts, " OR ") + ")", true
}

func dmlConjuncts(n *pg_query.Node) []*pg_query.Node {
	if n == nil {
		return nil
	}
	if b := n.GetBoolExpr(); b != nil && b.Boolop == pg_query.BoolExprType_AND_EXPR {
		var out []*pg_query.Node
		for _, a := range b.Args {
			out = append(out, dmlConjuncts(a)...)
		}
		return out
	}
	return []*pg_query.Node{n}
}

// dmlColumnName is the column a bare or qualified column reference names.
func dmlColumnName(n *pg_query.Node) string {
	cr := n.GetColumnRef()
	if cr == nil || len(cr.Fields) == 0 {
		return ""
	}
	return cr.Fields[len(cr.Fields)-1].GetString_().GetSval()
}

// dmlIsConstant: a literal, possibly cast (the same value in every batch,
// unlike now() or random()).
func dmlIsConstant(n *pg_query.Node) bool {
	switch v := n.GetNode().(type) {
	case *pg_query.Node_AConst:
		return true
	case *pg_query.Node_TypeCast:
		return dmlIsConstant(v.TypeCast.Arg)
	}
	return false
}

// keyRangeHint batches by ranges of the id column when the statement's own
// WHERE cannot tell processed rows from the others.
func keyRangeHint(c *policy.Check, p *dmlParts, t policy.Table) string {
	key := "id"
	cond := ""
	if p.where != nil {
		cond = " AND (" + policy.DeparseExpr(p.where) + ")"
	}
	head := dmlHead(c, p)
	qual := policy.QuoteIdent(t.Name)
	if p.rel.Alias != nil && p.rel.Alias.Aliasname != "" {
		qual = policy.QuoteIdent(p.rel.Alias.Aliasname)
	}
	return fmt.Sprintf("-- outside the migration, in batches of %[4]d rows by ranges of the key (here %[2]s: use the table's\n"+
		"-- primary key), each batch committed on its own. Run it {outside} (PostgreSQL 11+):\n"+
		"DO $$\nDECLARE\n  lo bigint;\n  hi bigint;\nBEGIN\n"+
		"  SELECT min(%[2]s), max(%[2]s) INTO lo, hi FROM %[1]s;\n"+
		"  WHILE lo <= hi LOOP\n"+
		"    %[3]s WHERE %[5]s.%[2]s >= lo AND %[5]s.%[2]s < lo + %[4]d%[6]s;\n"+
		"    COMMIT;\n"+
		"    lo := lo + %[4]d;\n"+
		"  END LOOP;\nEND $$;", t, policy.QuoteIdent(key), head, largeDMLBatch, qual, cond)
}

// thousands writes n with commas: 100000 → 100,000.
func thousands(n int64) string {
	s := strconv.FormatInt(n, 10)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

package policy

import (
	"fmt"
	"strconv"
	"strings"

	pg_query "github.com/pganalyze/pg_query_go/v6"
)

// largeDMLBatch is the batch size the recipe uses.
const largeDMLBatch = 10000

func init() {
	Register(Rule{
		ID:      "large-dml",
		Summary: "UPDATE or DELETE of a large share of a large table in one statement",
		// The field's rule: never backfill more than 100,000 rows in one
		// statement (large_dml.max_rows). The proxy also sees the
		// application's statements; only those that are not keyed
		// (WHERE id = $1) are estimated, and roles that legitimately do
		// large batch work get warn through a profile (rules.yaml).
		Default:       LevelReject,
		SizeDependent: true,
		DML:           true,
		MayConcern:    func(text string) bool { return !keyedWhereText(text) },
		Check:         checkLargeDML,
		Verify: &Verification{
			Statement: "UPDATE ledger SET currency = 'EUR'",
			Lock:      LockRowExclusive,
			Work:      WorkScan,
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
	node    *pg_query.Node   // the statement
}

func checkLargeDML(c *Check, n *pg_query.Node) {
	if p, ok := dmlOf(n); ok {
		judgeLargeDML(c, &p, false)
	}
	if m := n.GetMergeStmt(); m != nil {
		judgeMergeUnderLock(c, m)
	}
	// A data-modifying WITH query (WITH d AS (DELETE FROM t RETURNING *)
	// SELECT ...) changes its rows like a statement of its own.
	for _, cte := range withQueries(n) {
		if p, ok := dmlOf(cte); ok {
			judgeLargeDML(c, &p, true)
		}
	}
}

// dmlOf returns the parts of an UPDATE or DELETE; ok is false for any
// other statement.
func dmlOf(n *pg_query.Node) (dmlParts, bool) {
	switch s := n.GetNode().(type) {
	case *pg_query.Node_UpdateStmt:
		u := s.UpdateStmt
		return dmlParts{verb: "UPDATE", rel: u.Relation, where: u.WhereClause, from: u.FromClause, targets: u.TargetList, node: n}, true
	case *pg_query.Node_DeleteStmt:
		d := s.DeleteStmt
		return dmlParts{verb: "DELETE", rel: d.Relation, where: d.WhereClause, from: d.UsingClause, node: n}, true
	}
	return dmlParts{}, false
}

// withQueries returns the queries of a statement's WITH clause.
func withQueries(n *pg_query.Node) []*pg_query.Node {
	var w *pg_query.WithClause
	switch s := n.GetNode().(type) {
	case *pg_query.Node_SelectStmt:
		w = s.SelectStmt.WithClause
	case *pg_query.Node_InsertStmt:
		w = s.InsertStmt.WithClause
	case *pg_query.Node_UpdateStmt:
		w = s.UpdateStmt.WithClause
	case *pg_query.Node_DeleteStmt:
		w = s.DeleteStmt.WithClause
	case *pg_query.Node_MergeStmt:
		w = s.MergeStmt.WithClause
	}
	if w == nil {
		return nil
	}
	out := make([]*pg_query.Node, 0, len(w.Ctes))
	for _, c := range w.Ctes {
		if q := c.GetCommonTableExpr().GetCtequery(); q != nil {
			out = append(out, q)
		}
	}
	return out
}

// judgeLargeDML reports an UPDATE or DELETE that touches a large share of
// its table. A WITH query (inWith) is estimated on its own.
func judgeLargeDML(c *Check, p *dmlParts, inWith bool) {
	t := TableOf(p.rel)
	if t.Name == "" || c.Created(t) {
		return
	}
	if c.HoldsExclusive(t) {
		// Whatever its size, the statement runs while every other
		// session's reads and writes of t wait for the transaction.
		c.Report(Report{
			Table: t,
			Lock:  LockAccessExclusive,
			Message: fmt.Sprintf("%s of %s in the transaction that holds the ACCESS EXCLUSIVE lock an earlier statement took on it (ALTER TABLE, LOCK, TRUNCATE): every read and write of %s waits for the whole scan and the rest of the transaction.",
				p.verb, t, t),
			Detail: "The lock is held until the transaction ends, so the data change cannot be made short by itself here.",
			Hint:   "-- commit the schema change first (a migration of its own); then\n" + largeDMLHint(c, p, t),
		})
		return
	}
	var rows int64
	known := false
	// Asking the planner costs a round trip; application statements that
	// pick rows by key (WHERE id = $1, id IN (...)) are never large, so
	// only the others are estimated.
	if c.Session.Catalog != nil && !keyedWhere(p.where) {
		sql := c.SQL()
		if inWith {
			// The estimate of the whole statement is not the WITH
			// query's: ask for the WITH query on its own.
			sql = Deparse(p.node)
		}
		rows, known = c.Session.Catalog.EstimateRows(c.Ctx, sql)
	}
	in := ""
	if inWith {
		in = " (in a WITH query)"
	}
	var what string
	switch {
	case known && rows <= c.MaxDMLRows:
		return
	case known:
		what = fmt.Sprintf("%s of about %d rows of %s", p.verb, rows, t)
	case p.where == nil:
		what = fmt.Sprintf("%s%s of every row of %s (no WHERE clause)", p.verb, in, t)
	case !referencesColumns(p.where):
		what = fmt.Sprintf("%s%s of every row of %s (its WHERE clause does not depend on the row)", p.verb, in, t)
	default:
		return // a selective WHERE: an ordinary application statement
	}
	r := Report{
		Table: t,
		Lock:  LockRowExclusive,
		Message: fmt.Sprintf("%s in one statement locks each of those rows until it commits, blocking every other write to them, and leaves as many dead row versions at once (bloat, replication lag); backfills of more than %s rows belong in batches outside the migration.",
			what, thousands(c.MaxDMLRows)),
		Hint: largeDMLHint(c, p, t),
	}
	if known {
		r.Detail = "The row count is the planner's estimate (EXPLAIN)."
	}
	c.Report(r)
}

// judgeMergeUnderLock reports a MERGE into a table the transaction holds
// an ACCESS EXCLUSIVE lock on, as judgeLargeDML does an UPDATE or DELETE:
// whatever rows it changes, every other session waits for the rest of the
// transaction. (Its size is not estimated: a MERGE's plan does not say how
// many rows it changes.)
func judgeMergeUnderLock(c *Check, m *pg_query.MergeStmt) {
	t := TableOf(m.Relation)
	if t.Name == "" || c.Created(t) || !c.HoldsExclusive(t) {
		return
	}
	c.Report(Report{
		Table: t,
		Lock:  LockAccessExclusive,
		Message: fmt.Sprintf("MERGE into %s in the transaction that holds the ACCESS EXCLUSIVE lock an earlier statement took on it (ALTER TABLE, LOCK, TRUNCATE): every read and write of %s waits for the whole statement and the rest of the transaction.",
			t, t),
		Detail: "The lock is held until the transaction ends, so the data change cannot be made short by itself here.",
		Hint:   "-- commit the schema change first (a migration of its own); then run the MERGE in its own transaction,\n-- in batches of about " + strconv.Itoa(largeDMLBatch) + " rows of its source if it changes many rows",
	})
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
	lx := lexer{src: text}
	next := func() token {
		for {
			t := lx.next()
			if t.kind != tokComment {
				return t
			}
		}
	}
	other := func(t token, c byte) bool {
		return t.kind == tokOther && t.end == t.start+1 && text[t.start] == c
	}
	depth := 0
	for found := false; !found; {
		t := next()
		switch t.kind {
		case tokEOF, tokSemi:
			return false
		case tokOpen:
			depth++
		case tokClose:
			depth--
		case tokWord:
			found = depth == 0 && t.wordIs(text, "where")
		}
	}
	t := next()
	level := 0 // parentheses opened right after WHERE
	for t.kind == tokOpen {
		level++
		t = next()
	}
	// column, table.column or schema.table.column
	if t.kind != tokWord && t.kind != tokQuoted {
		return false
	}
	op := next()
	for other(op, '.') {
		if c := next(); c.kind != tokWord && c.kind != tokQuoted {
			return false
		}
		op = next()
	}
	switch {
	case other(op, '='):
		v := next()
		t = next()
		switch {
		case v.kind == tokString:
		case v.kind == tokOther && v.end > v.start+1 && text[v.start] == '$':
		case v.kind == tokOther && text[v.start] >= '0' && text[v.start] <= '9':
			// The lexer returns a number digit by digit.
			for end := v.end; t.kind == tokOther && t.start == end && (other(t, '.') || (text[t.start] >= '0' && text[t.start] <= '9')); t = next() {
				end = t.end
			}
		default:
			return false
		}
		for other(t, ':') { // value::type
			if !other(next(), ':') {
				return false
			}
			if ty := next(); ty.kind != tokWord && ty.kind != tokQuoted {
				return false
			}
			t = next()
		}
	case op.kind == tokWord && op.wordIs(text, "in"):
		if next().kind != tokOpen {
			return false
		}
		first := next()
		for _, kw := range []string{"select", "with", "values", "table"} {
			if first.wordIs(text, kw) {
				return false // a sub-select, not a list of values
			}
		}
		for d, t := 1, first; d > 0; t = next() {
			switch t.kind {
			case tokEOF, tokSemi:
				return false
			case tokOpen:
				d++
			case tokClose:
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
		if t.kind == tokEOF || t.kind == tokSemi {
			return cur == 0
		}
		if join {
			switch {
			case t.wordIs(text, "and"):
				join = false
			case t.wordIs(text, "returning"):
				return cur == 0
			case t.kind == tokClose:
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
		case t.kind == tokOpen:
			cur++
		case t.kind == tokClose:
			if cur--; cur < low {
				if cur < 0 {
					return false
				}
				low, join = cur, true
			}
		case t.wordIs(text, "or") && cur <= low:
			return false
		}
	}
}

// keyedWhere reports whether a WHERE clause has a top-level conjunct that
// compares a column with a constant or a parameter by = or IN: the shape of
// an application's statement about a few rows.
func keyedWhere(where *pg_query.Node) bool {
	if where == nil {
		return false
	}
	conj := []*pg_query.Node{where}
	if b := where.GetBoolExpr(); b != nil {
		if b.Boolop != pg_query.BoolExprType_AND_EXPR {
			return false
		}
		conj = b.Args
	}
	value := func(n *pg_query.Node) bool {
		if tc := n.GetTypeCast(); tc != nil {
			n = tc.Arg
		}
		return n.GetAConst() != nil || n.GetParamRef() != nil || n.GetList() != nil
	}
	for _, c := range conj {
		e := c.GetAExpr()
		if e == nil || e.Lexpr == nil || e.Rexpr == nil {
			continue
		}
		switch {
		case e.Kind == pg_query.A_Expr_Kind_AEXPR_IN:
		case e.Kind == pg_query.A_Expr_Kind_AEXPR_OP && len(e.Name) == 1 && e.Name[0].GetString_().GetSval() == "=":
		default:
			continue
		}
		if (e.Lexpr.GetColumnRef() != nil && value(e.Rexpr)) || (e.Rexpr.GetColumnRef() != nil && value(e.Lexpr)) {
			return true
		}
	}
	return false
}

// referencesColumns reports whether an expression mentions any column.
func referencesColumns(expr *pg_query.Node) bool {
	found := false
	Walk(expr, func(n *pg_query.Node) bool {
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
func largeDMLHint(c *Check, p *dmlParts, t Table) string {
	qual := t.Name
	if p.rel.Alias != nil && p.rel.Alias.Aliasname != "" {
		qual = p.rel.Alias.Aliasname
	}
	qctid := QuoteIdent(qual) + ".ctid"
	done := ""
	if p.verb == "UPDATE" {
		var ok bool
		if done, ok = updateDonePredicate(p); !ok {
			return keyRangeHint(c, p, t)
		}
	}
	rv := cloneNode(&pg_query.Node{Node: &pg_query.Node_RangeVar{RangeVar: p.rel}})
	sel := &pg_query.SelectStmt{
		TargetList: []*pg_query.Node{pg_query.MakeResTargetNodeWithVal(
			pg_query.MakeColumnRefNode([]*pg_query.Node{pg_query.MakeStrNode(qual), pg_query.MakeStrNode("ctid")}, -1), -1)},
		FromClause: []*pg_query.Node{rv},
	}
	for _, f := range p.from {
		sel.FromClause = append(sel.FromClause, cloneNode(f))
	}
	sub := Deparse(&pg_query.Node{Node: &pg_query.Node_SelectStmt{SelectStmt: sel}})
	var conds []string
	origWhere := ""
	if p.where != nil {
		origWhere = "(" + DeparseExpr(p.where) + ")"
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
	return fmt.Sprintf("-- outside the migration, in batches of %d rows, each in its own transaction;\n"+
		"-- repeat until it reports 0 rows (pause between batches if replicas lag):\n%s;", largeDMLBatch, batch)
}

// dmlHead deparses the statement without its WHERE and RETURNING clauses.
func dmlHead(c *Check, p *dmlParts) string {
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
	return Deparse(cloneNode(node))
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
		parts = append(parts, QuoteIdent(rt.Name)+" IS DISTINCT FROM "+DeparseExpr(rt.Val))
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
func keyRangeHint(c *Check, p *dmlParts, t Table) string {
	key := "id"
	cond := ""
	if p.where != nil {
		cond = " AND (" + DeparseExpr(p.where) + ")"
	}
	head := dmlHead(c, p)
	qual := QuoteIdent(t.Name)
	if p.rel.Alias != nil && p.rel.Alias.Aliasname != "" {
		qual = QuoteIdent(p.rel.Alias.Aliasname)
	}
	return fmt.Sprintf("-- outside the migration, in batches of %[4]d rows by ranges of the key (here %[2]s: use the table's\n"+
		"-- primary key), each batch committed on its own. Run it outside any transaction block (PostgreSQL 11+):\n"+
		"DO $$\nDECLARE\n  lo bigint;\n  hi bigint;\nBEGIN\n"+
		"  SELECT min(%[2]s), max(%[2]s) INTO lo, hi FROM %[1]s;\n"+
		"  WHILE lo <= hi LOOP\n"+
		"    %[3]s WHERE %[5]s.%[2]s >= lo AND %[5]s.%[2]s < lo + %[4]d%[6]s;\n"+
		"    COMMIT;\n"+
		"    lo := lo + %[4]d;\n"+
		"  END LOOP;\nEND $$;", t, QuoteIdent(key), head, largeDMLBatch, qual, cond)
}

// thousands writes n with commas: 100000 → 100,000.
func thousands(n int64) string {
	s := strconv.FormatInt(n, 10)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

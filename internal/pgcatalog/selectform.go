package pgcatalog

import (
	"regexp"
	"strconv"
	"strings"

	pg_query "github.com/pganalyze/pg_query_go/v6"
	"github.com/pgguard/pgguard/policy"
	"github.com/pgguard/pgguard/policy/sqltext"
)

// selectForm returns a SELECT that reads the rows an UPDATE or DELETE would
// change: the same table (ONLY and alias kept), the same FROM or USING list,
// the same WHERE and the same WITH queries. EXPLAIN of it estimates the rows
// as EXPLAIN of the statement does (the plan under a ModifyTable is that
// scan), without what EXPLAIN of a data-modifying statement does to the
// client's transaction: its executor start takes a command id, so that the
// client's next write in the block gets a later cmin than it would have.
// A SELECT is its own form. ok is false for anything else, for WHERE CURRENT OF, and when a WITH
// query modifies data itself.
func selectForm(sql string) (string, bool) {
	tree, err := sqltext.PgParse(sql)
	if err != nil || len(tree.Stmts) != 1 {
		return "", false
	}
	var rel *pg_query.RangeVar
	var from []*pg_query.Node
	var where *pg_query.Node
	var with *pg_query.WithClause
	switch s := tree.Stmts[0].Stmt.GetNode().(type) {
	case *pg_query.Node_UpdateStmt:
		u := s.UpdateStmt
		rel, from, where, with = u.Relation, u.FromClause, u.WhereClause, u.WithClause
	case *pg_query.Node_DeleteStmt:
		d := s.DeleteStmt
		rel, from, where, with = d.Relation, d.UsingClause, d.WhereClause, d.WithClause
	case *pg_query.Node_SelectStmt:
		// The SELECT form of a MERGE or an upsert (rule large-dml builds
		// it): as it is, unless a WITH query changes data.
		if w := s.SelectStmt.WithClause; w != nil {
			for _, cte := range w.Ctes {
				if q := cte.GetCommonTableExpr().GetCtequery(); q == nil || q.GetSelectStmt() == nil {
					return "", false
				}
			}
		}
		return sql, true
	default:
		return "", false
	}
	if rel == nil || where.GetCurrentOfExpr() != nil {
		return "", false
	}
	if with != nil {
		for _, cte := range with.Ctes {
			if q := cte.GetCommonTableExpr().GetCtequery(); q == nil || q.GetSelectStmt() == nil {
				return "", false
			}
		}
	}
	sel := &pg_query.SelectStmt{
		TargetList:  []*pg_query.Node{pg_query.MakeResTargetNodeWithVal(pg_query.MakeAConstIntNode(1, -1), -1)},
		FromClause:  append([]*pg_query.Node{{Node: &pg_query.Node_RangeVar{RangeVar: rel}}}, from...),
		WhereClause: where,
		WithClause:  with,
		Op:          pg_query.SetOperation_SETOP_NONE,
		LimitOption: pg_query.LimitOption_LIMIT_OPTION_DEFAULT,
	}
	tree.Stmts[0].Stmt = &pg_query.Node{Node: &pg_query.Node_SelectStmt{SelectStmt: sel}}
	out, err := pg_query.Deparse(tree)
	if err != nil {
		return "", false
	}
	return out, true
}

// PlannerQuestion is what a source's planner is asked about sql
// (SourcePlanner): its SELECT form, with every relation it names spelled
// as resolve finds it in the source, schema-qualified, so that it can be
// parsed there with search_path set to pg_catalog alone (EstimateRowsOn).
// A relation whose name changes keeps the old one as its alias, so that
// the statement's references to it still resolve; a WITH query's name is
// left as it is. ok is false when sql has no SELECT form, calls a function
// but the few built-in ones plannerSafe lists, or names a relation resolve
// does not find.
func PlannerQuestion(sql string, resolve func(policy.Table) (policy.Table, bool)) (string, bool) {
	form, ok := selectForm(sql)
	if !ok || !plannerSafe(form) {
		return "", false
	}
	tree, err := sqltext.PgParse(form)
	if err != nil || len(tree.Stmts) != 1 {
		return "", false
	}
	ctes := map[string]bool{}
	policy.Walk(tree, func(n *pg_query.Node) bool {
		if c := n.GetCommonTableExpr(); c != nil {
			ctes[c.Ctename] = true
		}
		return true
	})
	ok = true
	policy.Walk(tree, func(n *pg_query.Node) bool {
		rv := n.GetRangeVar()
		if rv == nil || !ok {
			return ok
		}
		if rv.Schemaname == "" && rv.Catalogname == "" && ctes[rv.Relname] {
			return true
		}
		t, found := resolve(policy.TableOf(rv))
		if !found || t.Schema == "" || t.Name == "" {
			ok = false
			return false
		}
		if rv.Alias == nil && t.Name != rv.Relname {
			rv.Alias = &pg_query.Alias{Aliasname: rv.Relname}
		}
		rv.Catalogname, rv.Schemaname, rv.Relname = "", t.Schema, t.Name
		return true
	})
	if !ok {
		return "", false
	}
	out, err := pg_query.Deparse(tree)
	if err != nil {
		return "", false
	}
	return out, true
}

// StatementTable names the table whose rows a statement's estimate
// counts: the target of an UPDATE, DELETE or MERGE, the first table of a
// SELECT's FROM (the SELECT forms of those statements start with their
// target), or of an INSERT's SELECT. The zero Table when there is none.
func StatementTable(sql string) policy.Table {
	tree, err := sqltext.PgParse(sql)
	if err != nil || len(tree.Stmts) != 1 {
		return policy.Table{}
	}
	first := func(from []*pg_query.Node) policy.Table {
		var t policy.Table
		for _, n := range from {
			policy.Walk(n, func(x *pg_query.Node) bool {
				if rv := x.GetRangeVar(); rv != nil && t.Name == "" {
					t = policy.TableOf(rv)
				}
				return t.Name == ""
			})
			if t.Name != "" {
				break
			}
		}
		return t
	}
	switch s := tree.Stmts[0].Stmt.GetNode().(type) {
	case *pg_query.Node_UpdateStmt:
		return policy.TableOf(s.UpdateStmt.Relation)
	case *pg_query.Node_DeleteStmt:
		return policy.TableOf(s.DeleteStmt.Relation)
	case *pg_query.Node_MergeStmt:
		return policy.TableOf(s.MergeStmt.Relation)
	case *pg_query.Node_SelectStmt:
		return first(s.SelectStmt.FromClause)
	case *pg_query.Node_InsertStmt:
		if sel := s.InsertStmt.SelectStmt.GetSelectStmt(); sel != nil {
			return first(sel.FromClause)
		}
	}
	return policy.Table{}
}

// StatementOnly reports whether the table StatementTable names is named
// with ONLY (UPDATE ONLY t, DELETE FROM ONLY t, FROM ONLY t): its
// inheritance children's rows are not the statement's.
func StatementOnly(sql string) bool {
	tree, err := sqltext.PgParse(sql)
	if err != nil || len(tree.Stmts) != 1 {
		return false
	}
	var rv *pg_query.RangeVar
	switch s := tree.Stmts[0].Stmt.GetNode().(type) {
	case *pg_query.Node_UpdateStmt:
		rv = s.UpdateStmt.Relation
	case *pg_query.Node_DeleteStmt:
		rv = s.DeleteStmt.Relation
	case *pg_query.Node_MergeStmt:
		rv = s.MergeStmt.Relation
	case *pg_query.Node_SelectStmt:
		if from := s.SelectStmt.FromClause; len(from) > 0 {
			rv = from[0].GetRangeVar()
		}
	}
	return rv != nil && !rv.Inh
}

// BatchBound is the most rows an UPDATE or DELETE changes (or the SELECT
// form rule large-dml counts it by, SELECT 1 FROM t WHERE ...) when a
// conjunct of its WHERE clause keeps only the rows whose column col holds
// one of at most n values: col = ANY (ARRAY(SELECT ... LIMIT n)) or col IN
// (SELECT ... LIMIT n) (the batch of the backfills pgguard's fixes give,
// by ctid, and of the tools' own batch loops, by key), col = ANY of an
// array of n constants, or an integer range of n values of col (col
// BETWEEN a AND b, col >= a AND col < b; rng is then true). The caller
// decides whether col names one row per value (ctid in a plain table, a
// unique key, an integer one for a range). ok is false for any other
// statement.
func BatchBound(sql string) (n int64, col string, rng bool, ok bool) {
	tree, err := sqltext.PgParse(sql)
	if err != nil || len(tree.Stmts) != 1 {
		return 0, "", false, false
	}
	var rel *pg_query.RangeVar
	var where *pg_query.Node
	switch s := tree.Stmts[0].Stmt.GetNode().(type) {
	case *pg_query.Node_UpdateStmt:
		rel, where = s.UpdateStmt.Relation, s.UpdateStmt.WhereClause
	case *pg_query.Node_DeleteStmt:
		rel, where = s.DeleteStmt.Relation, s.DeleteStmt.WhereClause
	case *pg_query.Node_SelectStmt:
		sel := s.SelectStmt
		if sel.Op != pg_query.SetOperation_SETOP_NONE || len(sel.FromClause) != 1 {
			return 0, "", false, false
		}
		rel, where = sel.FromClause[0].GetRangeVar(), sel.WhereClause
	}
	if rel == nil || where == nil {
		return 0, "", false, false
	}
	name := rel.Relname
	if rel.Alias != nil && rel.Alias.Aliasname != "" {
		name = rel.Alias.Aliasname
	}
	conjuncts := []*pg_query.Node{where}
	if b := where.GetBoolExpr(); b != nil && b.Boolop == pg_query.BoolExprType_AND_EXPR {
		conjuncts = b.Args
	}
	best := int64(-1)
	lo, hi := map[string]int64{}, map[string]int64{}
	for _, x := range conjuncts {
		if v, c, ok := valuesBound(x, name); ok && (best < 0 || v < best) {
			n, col, rng, best = v, c, false, v
		}
		rangeBound(x, name, lo, hi)
	}
	for c, l := range lo {
		h, ok := hi[c]
		if !ok {
			continue
		}
		v := int64(0)
		if h >= l {
			v = h - l + 1
		}
		if best < 0 || v < best {
			n, col, rng, best = v, c, true, v
		}
	}
	return n, col, rng, best >= 0
}

// columnOf is the name of a column reference, unqualified or qualified by
// rel; "" for anything else.
func columnOf(n *pg_query.Node, rel string) string {
	ref := n.GetColumnRef()
	if ref == nil || len(ref.Fields) == 0 || len(ref.Fields) > 2 ||
		len(ref.Fields) == 2 && ref.Fields[0].GetString_().GetSval() != rel {
		return ""
	}
	return ref.Fields[len(ref.Fields)-1].GetString_().GetSval()
}

// intConst is the value of an integer constant, a cast of one, or a
// string literal that holds one (a parameter's bound value, substituted
// as '1000' or '1000'::int8).
func intConst(n *pg_query.Node) (int64, bool) {
	if tc := n.GetTypeCast(); tc != nil {
		n = tc.Arg
	}
	c := n.GetAConst()
	switch {
	case c == nil:
		return 0, false
	case c.GetIval() != nil:
		return int64(c.GetIval().Ival), true
	case c.GetSval() != nil:
		v, err := strconv.ParseInt(strings.TrimSpace(c.GetSval().Sval), 10, 64)
		return v, err == nil
	}
	return 0, false
}

// valuesBound matches col = ANY (ARRAY(SELECT ... LIMIT n)), col IN
// (SELECT ... LIMIT n) and col = ANY of an array of n constants.
func valuesBound(n *pg_query.Node, rel string) (int64, string, bool) {
	var col, sub *pg_query.Node
	if e := n.GetAExpr(); e != nil && e.Kind == pg_query.A_Expr_Kind_AEXPR_OP_ANY && opName(e.Name) == "=" {
		col = e.Lexpr
		r := e.Rexpr
		if tc := r.GetTypeCast(); tc != nil {
			r = tc.Arg
		}
		switch {
		case r.GetSubLink() != nil && r.GetSubLink().SubLinkType == pg_query.SubLinkType_ARRAY_SUBLINK:
			sub = r.GetSubLink().Subselect
		case r.GetAArrayExpr() != nil:
			if c := columnOf(col, rel); c != "" {
				return int64(len(r.GetAArrayExpr().Elements)), c, true
			}
			return 0, "", false
		case r.GetAConst() != nil && r.GetAConst().GetSval() != nil:
			v := strings.TrimSpace(r.GetAConst().GetSval().Sval)
			c := columnOf(col, rel)
			if c == "" || !strings.HasPrefix(v, "{") || !strings.HasSuffix(v, "}") || strings.ContainsAny(v[1:len(v)-1], "{}\"\\") {
				return 0, "", false
			}
			if strings.TrimSpace(v[1:len(v)-1]) == "" {
				return 0, c, true
			}
			return int64(strings.Count(v, ",") + 1), c, true
		default:
			return 0, "", false
		}
	} else if link := n.GetSubLink(); link != nil && link.SubLinkType == pg_query.SubLinkType_ANY_SUBLINK &&
		(len(link.OperName) == 0 || opName(link.OperName) == "=") {
		col, sub = link.Testexpr, link.Subselect
	} else {
		return 0, "", false
	}
	c := columnOf(col, rel)
	sel := sub.GetSelectStmt()
	if c == "" || sel == nil || sel.LimitOption != pg_query.LimitOption_LIMIT_OPTION_COUNT {
		return 0, "", false
	}
	v, ok := intConst(sel.LimitCount)
	if !ok || v < 0 {
		return 0, "", false
	}
	return v, c, true
}

// rangeBound records the integer bounds a conjunct sets on a column of
// rel, inclusive: col BETWEEN a AND b, col >= a, col > a, col <= b,
// col < b (and the constant on the left).
func rangeBound(n *pg_query.Node, rel string, lo, hi map[string]int64) {
	e := n.GetAExpr()
	if e == nil {
		return
	}
	setLo := func(c string, v int64) {
		if old, ok := lo[c]; !ok || v > old {
			lo[c] = v
		}
	}
	setHi := func(c string, v int64) {
		if old, ok := hi[c]; !ok || v < old {
			hi[c] = v
		}
	}
	switch e.Kind {
	case pg_query.A_Expr_Kind_AEXPR_BETWEEN:
		c := columnOf(e.Lexpr, rel)
		l := e.Rexpr.GetList()
		if c == "" || l == nil || len(l.Items) != 2 {
			return
		}
		a, ok1 := intConst(l.Items[0])
		b, ok2 := intConst(l.Items[1])
		if ok1 && ok2 {
			setLo(c, a)
			setHi(c, b)
		}
	case pg_query.A_Expr_Kind_AEXPR_OP:
		op := opName(e.Name)
		c, v, ok := columnOf(e.Lexpr, rel), int64(0), false
		if c != "" {
			v, ok = intConst(e.Rexpr)
		} else if c = columnOf(e.Rexpr, rel); c != "" {
			v, ok = intConst(e.Lexpr)
			op = map[string]string{">=": "<=", ">": "<", "<=": ">=", "<": ">", "=": "="}[op]
		}
		if !ok {
			return
		}
		switch op {
		case ">=":
			setLo(c, v)
		case ">":
			setLo(c, v+1)
		case "<=":
			setHi(c, v)
		case "<":
			setHi(c, v-1)
		case "=":
			setLo(c, v)
			setHi(c, v)
		}
	}
}

// opName is an operator's name without its schema (pg_catalog.=).
func opName(name []*pg_query.Node) string {
	if len(name) == 0 {
		return ""
	}
	return name[len(name)-1].GetString_().GetSval()
}

// UpsertSourceTables lists the tables an upsert's estimate (SELECT 1 FROM
// (<its SELECT>) AS pgguard_source, policy.UpsertSourceAlias) reads, in
// its joins, WITH queries, UNION arms and subqueries alike, without the
// names of its WITH queries: the rows of such a SELECT may come from any
// of them, not from the first of its FROM. ok is false for any other
// statement.
func UpsertSourceTables(sql string) (tables []policy.Table, ok bool) {
	tree, err := sqltext.PgParse(sql)
	if err != nil || len(tree.Stmts) != 1 {
		return nil, false
	}
	sel := tree.Stmts[0].Stmt.GetSelectStmt()
	if sel == nil || len(sel.FromClause) != 1 {
		return nil, false
	}
	sub := sel.FromClause[0].GetRangeSubselect()
	if sub == nil || sub.Alias == nil || sub.Alias.Aliasname != policy.UpsertSourceAlias {
		return nil, false
	}
	ctes := map[string]bool{}
	policy.Walk(sub, func(x *pg_query.Node) bool {
		if cte := x.GetCommonTableExpr(); cte != nil {
			ctes[cte.Ctename] = true
		}
		return true
	})
	seen := map[policy.Table]bool{}
	policy.Walk(sub, func(x *pg_query.Node) bool {
		if rv := x.GetRangeVar(); rv != nil {
			t := policy.TableOf(rv)
			if t.Name != "" && !(t.Schema == "" && ctes[t.Name]) && !seen[t] {
				seen[t] = true
				tables = append(tables, t)
			}
		}
		return true
	})
	return tables, true
}

// WholeTable reports whether sql is an UPDATE or DELETE of every row of
// one table (no WHERE, no FROM or USING, no WITH), and which.
func WholeTable(sql string) (policy.Table, bool) {
	tree, err := sqltext.PgParse(sql)
	if err != nil || len(tree.Stmts) != 1 {
		return policy.Table{}, false
	}
	switch s := tree.Stmts[0].Stmt.GetNode().(type) {
	case *pg_query.Node_UpdateStmt:
		u := s.UpdateStmt
		if u.WhereClause == nil && len(u.FromClause) == 0 && u.WithClause == nil {
			return policy.TableOf(u.Relation), true
		}
	case *pg_query.Node_DeleteStmt:
		d := s.DeleteStmt
		if d.WhereClause == nil && len(d.UsingClause) == 0 && d.WithClause == nil {
			return policy.TableOf(d.Relation), true
		}
	}
	return policy.Table{}, false
}

// SearchPathSet reads a SET [SESSION | LOCAL] search_path statement: the
// schemas it sets (an empty, non-nil list for none), whether it is LOCAL,
// and ok=false when sql is not one. SET search_path TO DEFAULT and RESET
// search_path give nil (the server's default).
func SearchPathSet(sql string) (path []string, local, ok bool) {
	tree, err := sqltext.PgParse(sql)
	if err != nil || len(tree.Stmts) != 1 {
		return nil, false, false
	}
	if sel := tree.Stmts[0].Stmt.GetSelectStmt(); sel != nil {
		return setConfigSearchPath(sel)
	}
	v := tree.Stmts[0].Stmt.GetVariableSetStmt()
	if v == nil || v.Name != "search_path" {
		return nil, false, false
	}
	switch v.Kind {
	case pg_query.VariableSetKind_VAR_SET_VALUE:
		path = []string{}
		for _, a := range v.Args {
			c := a.GetAConst()
			if c == nil || c.GetSval() == nil {
				return nil, false, false
			}
			path = append(path, c.GetSval().Sval)
		}
		return path, v.IsLocal, true
	case pg_query.VariableSetKind_VAR_SET_DEFAULT, pg_query.VariableSetKind_VAR_RESET:
		return nil, v.IsLocal, true
	}
	return nil, false, false
}

// setConfigSearchPath reads SELECT [pg_catalog.]set_config('search_path',
// 'value', is_local) (how pg_dump's output and some tools set it): the
// schemas of value as the server splits it (unquoted names folded to
// lower case, quoted ones kept), whether it is local; ok=false for any
// other SELECT, or arguments that are not literals.
func setConfigSearchPath(sel *pg_query.SelectStmt) (path []string, local, ok bool) {
	if len(sel.TargetList) != 1 || len(sel.FromClause) != 0 || sel.WhereClause != nil || sel.Op != pg_query.SetOperation_SETOP_NONE {
		return nil, false, false
	}
	f := sel.TargetList[0].GetResTarget().GetVal().GetFuncCall()
	if f == nil || len(f.Args) != 3 {
		return nil, false, false
	}
	var name []string
	for _, n := range f.Funcname {
		name = append(name, n.GetString_().GetSval())
	}
	if !(len(name) == 1 && name[0] == "set_config" || len(name) == 2 && name[0] == "pg_catalog" && name[1] == "set_config") {
		return nil, false, false
	}
	guc, value := f.Args[0].GetAConst().GetSval(), f.Args[1].GetAConst().GetSval()
	if guc == nil || value == nil || !strings.EqualFold(guc.Sval, "search_path") {
		return nil, false, false
	}
	b := f.Args[2].GetAConst().GetBoolval()
	if b == nil {
		return nil, false, false
	}
	path, ok = splitIdentifiers(value.Sval)
	return path, b.Boolval, ok
}

// splitIdentifiers splits a list of names as PostgreSQL's
// SplitIdentifierString does for search_path: separated by commas,
// whitespace around them ignored, a double-quoted name kept as it is ("" a
// quote), an unquoted one folded to lower case.
func splitIdentifiers(s string) ([]string, bool) {
	out := []string{}
	i := 0
	skip := func() {
		for i < len(s) && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r') {
			i++
		}
	}
	skip()
	if i == len(s) {
		return out, true
	}
	for {
		var name strings.Builder
		if i < len(s) && s[i] == '"' {
			i++
			for {
				if i >= len(s) {
					return nil, false
				}
				if s[i] == '"' {
					if i+1 < len(s) && s[i+1] == '"' {
						name.WriteByte('"')
						i += 2
						continue
					}
					i++
					break
				}
				name.WriteByte(s[i])
				i++
			}
		} else {
			start := i
			for i < len(s) && s[i] != ',' && s[i] != ' ' && s[i] != '\t' && s[i] != '\n' && s[i] != '\r' {
				i++
			}
			if i == start {
				return nil, false
			}
			name.WriteString(strings.ToLower(s[start:i]))
		}
		out = append(out, name.String())
		skip()
		if i == len(s) {
			return out, true
		}
		if s[i] != ',' {
			return nil, false
		}
		i++
		skip()
	}
}

// plannerSafe reports whether EXPLAIN of sql may be asked of another
// database's planner (EstimateRowsOn) for a session that is not allowed to
// read that database: the planner evaluates an expression of constants to
// estimate a comparison with it, stable functions included, so a function
// that reads data (table_to_xml, a stable function of the application's)
// would have it read the source's rows, and the estimate reported to the
// session would tell them. Only the built-in functions a backfill's WHERE
// commonly calls, which read no table, may appear; a function named in any
// schema but pg_catalog, or any other, makes it unsafe.
func plannerSafe(sql string) bool {
	if len(sql) > maxQuestion {
		return false
	}
	tree, err := sqltext.PgParse(sql)
	if err != nil || len(tree.Stmts) != 1 {
		return false
	}
	safe := true
	policy.Walk(tree, func(n *pg_query.Node) bool {
		if c := n.GetAConst(); c != nil && (hugeNumber(c.GetFval().GetFval()) || hugeNumber(c.GetSval().GetSval())) {
			safe = false
			return false
		}
		if e := n.GetAExpr(); e != nil && len(e.Name) > 0 && e.Name[len(e.Name)-1].GetString_().GetSval() == "^" {
			safe = false
			return false
		}
		f := n.GetFuncCall()
		if f == nil {
			return safe
		}
		var name []string
		for _, p := range f.Funcname {
			name = append(name, p.GetString_().GetSval())
		}
		switch {
		case len(name) == 2 && name[0] == "pg_catalog":
			name = name[1:]
		case len(name) != 1:
			safe = false
			return false
		}
		if !pureFunctions[name[0]] {
			safe = false
		}
		return safe
	})
	return safe
}

// hugeNumber reports whether s spells a number in exponent notation of
// more than a thousand digits ('1e131000'): a few bytes whose numeric
// value the planner multiplies, divides or prints digit by digit, serving
// no interrupt (statement_timeout) meanwhile. The ^ operator makes such
// values too (10::numeric ^ 100000) and is refused the same way.
func hugeNumber(s string) bool {
	m := hugeNumberRe.FindStringSubmatch(s)
	if m == nil {
		return false
	}
	exp, err := strconv.Atoi(m[1])
	return err != nil || exp > 1000
}

var hugeNumberRe = regexp.MustCompile(`^\s*[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)[eE][+-]?0*([0-9]+)\s*$`)

// maxQuestion bounds the planner question's text: the source writes it
// to its WAL (the temporary view's rule is a row of pg_rewrite), and
// folding its constants costs up to the square of its length (strpos,
// split_part: no interrupt is served meanwhile, statement_timeout
// included). A longer statement is estimated as all of the source's rows.
const maxQuestion = 16 << 10

// pureFunctions are built-in functions that read no table: their value
// depends on their arguments (and the clock) alone. None makes a value
// much longer than its arguments' text (lpad, rpad, repeat and replace
// would: a gigabyte from a statement of a few bytes, in the source's
// memory, folded while it holds the question's locks).
var pureFunctions = map[string]bool{
	"now": true, "statement_timestamp": true, "transaction_timestamp": true, "clock_timestamp": true,
	"date_trunc": true, "date_part": true, "extract": true, "age": true, "make_interval": true,
	"make_date": true, "make_timestamp": true, "make_timestamptz": true, "to_timestamp": true,
	"to_date": true, "to_char": true, "to_number": true, "timezone": true,
	"lower": true, "upper": true, "length": true, "char_length": true, "octet_length": true,
	"btrim": true, "ltrim": true, "rtrim": true, "substr": true, "substring": true, "left": true,
	"right": true, "position": true, "strpos": true, "split_part": true,
	"concat": true, "concat_ws": true, "md5": true,
	"abs": true, "round": true, "floor": true, "ceil": true, "ceiling": true, "trunc": true, "mod": true,
	"array_length": true, "cardinality": true, "jsonb_typeof": true, "json_typeof": true,
	"jsonb_array_length": true, "json_array_length": true,
}

// readRelations are the relations sql names (its CTEs' names aside), as
// it spells them; nil when it cannot be parsed.
func readRelations(sql string) []policy.Table {
	tree, err := sqltext.PgParse(sql)
	if err != nil {
		return nil
	}
	ctes := map[string]bool{}
	policy.Walk(tree, func(n *pg_query.Node) bool {
		if c := n.GetCommonTableExpr(); c != nil {
			ctes[c.Ctename] = true
		}
		return true
	})
	var out []policy.Table
	policy.Walk(tree, func(n *pg_query.Node) bool {
		if rv := n.GetRangeVar(); rv != nil && !(rv.Schemaname == "" && rv.Catalogname == "" && ctes[rv.Relname]) {
			out = append(out, policy.TableOf(rv))
		}
		return true
	})
	return out
}

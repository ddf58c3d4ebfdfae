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

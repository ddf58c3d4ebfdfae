package policy

import (
	"encoding/json"
	"fmt"
	"sort"

	pg_query "github.com/pganalyze/pg_query_go/v6"
)

// judgeBodies judges the SQL inside DO blocks, PL/pgSQL functions and
// procedures, and SQL-standard function bodies (BEGIN ATOMIC). Inner
// statements run inside the caller's transaction: they are nested, and
// their findings say where they come from.
func (j *judgement) judgeBodies(node *pg_query.Node, text string, depth int) {
	var where string
	switch s := node.GetNode().(type) {
	case *pg_query.Node_DoStmt:
		if lang := defElemString(s.DoStmt.Args, "language"); lang != "" && lang != "plpgsql" {
			return
		}
		where = "in the DO block"
	case *pg_query.Node_CreateFunctionStmt:
		kind := "function"
		if s.CreateFunctionStmt.IsProcedure {
			kind = "procedure"
		}
		where = fmt.Sprintf("in %s %s", kind, nameList(s.CreateFunctionStmt.Funcname))
		if body := s.CreateFunctionStmt.SqlBody; body != nil {
			j.judgeSQLBody(body, text, where, depth)
			return
		}
		if defElemString(s.CreateFunctionStmt.Options, "language") != "plpgsql" {
			return
		}
	default:
		return
	}
	js, err := parsePlpgsql(text)
	if err != nil {
		j.engineFinding(ParseErrorRule, Level(j.e.cfg.OnParseError), Report{
			Message: fmt.Sprintf("pgguard could not parse the PL/pgSQL %s, so it cannot tell which locks it takes: %v.", where[3:], err),
			Hint:    "-- check the body with psql first; if it is valid on your server, add: -- pgguard:allow parse-error reason=\"...\"",
		})
		return
	}
	var tree any
	if err := json.Unmarshal([]byte(js), &tree); err != nil {
		return
	}
	j.walkPlpgsql(tree, where, depth, 0)
}

// parsePlpgsql wraps the PL/pgSQL parser so that a panic becomes an error.
func parsePlpgsql(text string) (js string, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("parser failed: %v", r)
		}
	}()
	return pg_query.ParsePlPgSqlToJSON(text)
}

// maxJSONDepth bounds the walk over a PL/pgSQL tree.
const maxJSONDepth = 200

func (j *judgement) walkPlpgsql(v any, where string, depth, jsonDepth int) {
	if jsonDepth > maxJSONDepth {
		return
	}
	switch t := v.(type) {
	case []any:
		for _, x := range t {
			j.walkPlpgsql(x, where, depth, jsonDepth+1)
		}
	case map[string]any:
		keys := make([]string, 0, len(t))
		for k := range t {
			keys = append(keys, k)
		}
		sort.Strings(keys) // then_body before else_body: stable output
		for _, k := range keys {
			x := t[k]
			switch k {
			case "PLpgSQL_stmt_execsql":
				j.judgeInner(exprQuery(x, "sqlstmt"), where, depth)
			case "PLpgSQL_stmt_perform":
				j.judgeInner(exprQuery(x, "expr"), where, depth)
			case "PLpgSQL_stmt_dynexecute", "PLpgSQL_stmt_dynfors":
				j.judgeDynamic(exprQuery(x, "query"), where, depth)
			}
			j.walkPlpgsql(x, where, depth, jsonDepth+1)
		}
	}
}

// exprQuery digs {key: {PLpgSQL_expr: {query: "..."}}} out of a statement.
func exprQuery(stmt any, key string) string {
	m, _ := stmt.(map[string]any)
	e, _ := m[key].(map[string]any)
	pe, _ := e["PLpgSQL_expr"].(map[string]any)
	q, _ := pe["query"].(string)
	return q
}

// judgeInner parses and judges one static statement of a body.
func (j *judgement) judgeInner(sql, where string, depth int) {
	if sql == "" || classify(sql) == classEmpty {
		return
	}
	node, err := j.e.cache.parse(sql, int(j.e.cfg.MaxStatementBytes))
	if err != nil {
		if classify(sql) == classDDL {
			j.engineFinding(ParseErrorRule, Level(j.e.cfg.OnParseError), Report{
				Message: fmt.Sprintf("pgguard could not parse a statement %s, so it cannot tell which locks it takes: %v.", where, err),
			})
		}
		return
	}
	j.innerLock = strongerLock(j.innerLock, statementFacts(node).lock)
	before := len(j.found)
	j.judge(node, sql, true, depth+1)
	for i := before; i < len(j.found); i++ {
		j.found[i].Message = capitalize(where) + ": " + j.found[i].Message
	}
}

// judgeDynamic handles EXECUTE: a string literal is judged as SQL, anything
// else is opaque and follows on_dynamic_sql.
func (j *judgement) judgeDynamic(expr, where string, depth int) {
	if sql, ok := stringLiteral(expr); ok {
		j.judgeInner(sql, where, depth)
		return
	}
	j.engineFinding(DynamicSQLRule, Level(j.e.cfg.OnDynamicSQL), Report{
		Message: fmt.Sprintf("EXECUTE %s runs SQL built at run time (%s), which pgguard cannot check; it may take any lock.", where, expr),
		Hint:    "-- write the statement out as plain SQL so that it can be checked, or, if it is safe, add: -- pgguard:allow dynamic-sql reason=\"...\"",
	})
}

// stringLiteral returns the value of expr when it is one string constant.
func stringLiteral(expr string) (string, bool) {
	node, err := parseStatement("SELECT "+expr, DefaultMaxStatementBytes)
	if err != nil {
		return "", false
	}
	sel := node.GetSelectStmt()
	if sel == nil || len(sel.TargetList) != 1 {
		return "", false
	}
	c := sel.TargetList[0].GetResTarget().GetVal().GetAConst()
	if c == nil || c.GetSval() == nil {
		return "", false
	}
	return c.GetSval().Sval, true
}

// judgeSQLBody judges the statements of a BEGIN ATOMIC body, which arrive
// already parsed (a List of statement Lists).
func (j *judgement) judgeSQLBody(body *pg_query.Node, text, where string, depth int) {
	var walk func(n *pg_query.Node, d int)
	walk = func(n *pg_query.Node, d int) {
		if n == nil || d > 3 {
			return
		}
		if l := n.GetList(); l != nil {
			for _, x := range l.Items {
				walk(x, d+1)
			}
			return
		}
		before := len(j.found)
		j.judge(n, text, true, depth+1) // the body's statements have no text of their own
		for i := before; i < len(j.found); i++ {
			j.found[i].Message = capitalize(where) + ": " + j.found[i].Message
		}
	}
	walk(body, 0)
}

func defElemString(opts []*pg_query.Node, name string) string {
	for _, o := range opts {
		de := o.GetDefElem()
		if de == nil || de.Defname != name {
			continue
		}
		if s := de.GetArg().GetString_(); s != nil {
			return s.Sval
		}
	}
	return ""
}

func capitalize(s string) string {
	if s == "" || s[0] < 'a' || s[0] > 'z' {
		return s
	}
	return string(s[0]-'a'+'A') + s[1:]
}

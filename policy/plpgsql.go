package policy

import (
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/pgguard/pgguard/policy/sqltext"

	pg_query "github.com/pganalyze/pg_query_go/v6"
)

// judgeBodies judges the SQL inside DO blocks, PL/pgSQL functions and
// procedures, and SQL-standard function bodies (BEGIN ATOMIC). Inner
// statements run inside the caller's transaction: they are nested, and
// their findings say where they come from.
func (j *judgement) judgeBodies(node *pg_query.Node, text string, depth int) {
	var where string
	switch s := node.GetNode().(type) {
	case *pg_query.Node_ExplainStmt:
		// EXPLAIN ANALYZE runs the statement it explains.
		if analyzes(s.ExplainStmt.Options) {
			if inner := wrappedText(text, "explain"); inner != "" {
				j.judgeInner(inner, "in EXPLAIN ANALYZE, which runs it", depth)
			}
		}
		return
	case *pg_query.Node_CopyStmt:
		// COPY (UPDATE ... RETURNING ...) TO runs the statement it copies.
		if q := s.CopyStmt.Query; q != nil && (q.GetSelectStmt() == nil || q.GetSelectStmt().WithClause != nil) {
			j.judgeInner(Deparse(q), "in COPY (...) TO, which runs it", depth)
		}
		return
	case *pg_query.Node_PrepareStmt:
		// Judged when prepared: EXECUTE then runs what was accepted.
		if inner := wrappedText(text, "prepare"); inner != "" {
			j.judgeInner(inner, "in PREPARE "+s.PrepareStmt.Name, depth)
		}
		return
	case *pg_query.Node_DoStmt:
		if lang := defElemString(s.DoStmt.Args, "language"); lang != "" && lang != "plpgsql" {
			return
		}
		where = "in the DO block"
	case *pg_query.Node_CreateFunctionStmt:
		// The body runs when the function is called, not now: its
		// statements' locks are not this statement's.
		lock, tls := j.innerLock, len(j.innerTableLocks)
		defer func() { j.innerLock, j.innerTableLocks = lock, j.innerTableLocks[:tls] }()
		kind := "function"
		if s.CreateFunctionStmt.IsProcedure {
			kind = "procedure"
		}
		where = fmt.Sprintf("in %s %s", kind, NameList(s.CreateFunctionStmt.Funcname))
		if body := s.CreateFunctionStmt.SqlBody; body != nil {
			j.judgeSQLBody(body, text, where, depth)
			return
		}
		switch defElemString(s.CreateFunctionStmt.Options, "language") {
		case "plpgsql":
		case "sql":
			// LANGUAGE sql AS '...': the body is a string of statements
			// that run, one after another, whenever the function is
			// called (from a query, a CALL, a trigger or an event trigger).
			for _, body := range functionAs(s.CreateFunctionStmt.Options) {
				for _, st := range sqltext.SplitStrings(body, false) {
					j.judgeInner(st.Text, where, depth)
				}
			}
			return
		default:
			return
		}
	default:
		return
	}
	js, err := ParsePlpgsql(text)
	if err != nil {
		j.engineFinding(ParseErrorRule, Level(j.e.cfg.OnParseError), Report{
			Message: fmt.Sprintf("pgguard could not parse the PL/pgSQL %s, so it cannot tell which locks it takes: %v.", where[3:], err),
			Hint:    "-- check the body on your server first; if it is valid there, add:\n" + AllowAnnotation(j.sc.Tool, ParseErrorRule, "..."),
		})
		return
	}
	j.walkPlpgsqlJSON(js, where, depth)
}

// walkPlpgsqlJSON judges the statements of a parsed PL/pgSQL body.
func (j *judgement) walkPlpgsqlJSON(js, where string, depth int) {
	var tree any
	if err := json.Unmarshal([]byte(js), &tree); err != nil {
		return
	}
	j.walkPlpgsql(tree, where, depth, 0)
}

// parsePlpgsql wraps the PL/pgSQL parser so that a panic becomes an error.
func ParsePlpgsql(text string) (js string, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("parser failed: %v", r)
		}
	}()
	return sqltext.PgParsePlPgSQL(text)
}

// maxJSONDepth bounds the walk over a PL/pgSQL tree.
const MaxJSONDepth = 200

func (j *judgement) walkPlpgsql(v any, where string, depth, jsonDepth int) {
	if jsonDepth > MaxJSONDepth {
		j.engineFinding(ParseErrorRule, Level(j.e.cfg.OnParseError), Report{
			Message: fmt.Sprintf("The PL/pgSQL %s is nested too deeply for pgguard to check every statement in it.", where[3:]),
		})
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
			case "PLpgSQL_stmt_dynexecute", "PLpgSQL_stmt_dynfors":
				j.judgeDynamic(ExprQuery(x, "query"), where, depth)
			case "PLpgSQL_stmt_return_query", "PLpgSQL_stmt_open":
				if q := ExprQuery(x, "dynquery"); q != "" {
					j.judgeDynamic(q, where, depth)
				}
			case "PLpgSQL_expr":
				// Every piece of SQL in the body: statements (SQL, PERFORM,
				// CALL, a nested DO, a FOR's query), conditions and
				// assignments, which are SELECTs of an expression and may
				// call set_config or a function.
				j.judgePlpgsqlExpr(x, where, depth)
				continue
			}
			j.walkPlpgsql(x, where, depth, jsonDepth+1)
		}
	}
}

// PL/pgSQL's parse modes (PostgreSQL's RawParseMode) of an expression.
const (
	PlpgsqlStatement  = 0 // a whole statement
	PlpgsqlExpression = 2 // an expression: IF cond, RETURN expr, ...
	plpgsqlAssign1    = 3 // var := expr, up to var.field[sub] := expr
	plpgsqlAssign3    = 5
)

// judgePlpgsqlExpr judges one PLpgSQL_expr of a body.
func (j *judgement) judgePlpgsqlExpr(x any, where string, depth int) {
	m, _ := x.(map[string]any)
	q, _ := m["query"].(string)
	mode, _ := m["parseMode"].(float64)
	switch {
	case q == "":
	case mode == PlpgsqlStatement:
		j.judgeInner(q, where, depth)
	case mode == PlpgsqlExpression, mode >= plpgsqlAssign1 && mode <= plpgsqlAssign3:
		if mode != PlpgsqlExpression {
			if i := strings.Index(q, ":="); i >= 0 {
				q = q[i+2:]
			} else if i := strings.IndexByte(q, '='); i >= 0 {
				q = q[i+1:]
			}
		}
		// An expression is judged for what it calls; the SELECT around it
		// is ours and takes no lock of its own.
		lock, tls := j.innerLock, len(j.innerTableLocks)
		j.judgeInner("SELECT "+q, where, depth)
		j.innerLock, j.innerTableLocks = lock, j.innerTableLocks[:tls]
	}
}

// exprQuery digs {key: {PLpgSQL_expr: {query: "..."}}} out of a statement.
func ExprQuery(stmt any, key string) string {
	m, _ := stmt.(map[string]any)
	e, _ := m[key].(map[string]any)
	pe, _ := e["PLpgSQL_expr"].(map[string]any)
	q, _ := pe["query"].(string)
	return q
}

// judgeInner parses and judges one static statement of a body.
func (j *judgement) judgeInner(sql, where string, depth int) {
	if sql == "" || sqltext.Classify(sql) == sqltext.ClassEmpty {
		return
	}
	node, err := j.e.cache.parse(sql, int(j.e.cfg.MaxStatementBytes))
	if err != nil {
		if sqltext.Classify(sql) == sqltext.ClassDDL {
			j.engineFinding(ParseErrorRule, Level(j.e.cfg.OnParseError), Report{
				Message: fmt.Sprintf("pgguard could not parse a statement %s, so it cannot tell which locks it takes: %v.", where, err),
			})
		}
		return
	}
	f := statementFacts(node)
	if j.inCalled && f.ddl {
		j.calledDDL = true
	}
	j.innerLock = strongerLock(j.innerLock, f.lock)
	// The tables it names, for the look before queueing (a DO block's
	// ALTER TABLE locks them as the block runs).
	j.innerTableLocks = append(j.innerTableLocks, tableLocks(node, f)...)
	// The relations it drops, renames or moves: a name the transaction
	// created is no longer new after a DO block drops it.
	j.innerMoves = append(j.innerMoves, movedRelations(node)...)
	before := len(j.found)
	j.judge(node, sql, true, depth+1)
	prefix := Capitalize(where) + ": "
	for i := before; i < len(j.found); i++ {
		if !strings.HasPrefix(j.found[i].Message, prefix) { // a DO block in a DO block
			j.found[i].Message = prefix + j.found[i].Message
		}
	}
}

// judgeDynamic handles EXECUTE: a string literal is judged as SQL, anything
// else is opaque and follows on_dynamic_sql.
func (j *judgement) judgeDynamic(expr, where string, depth int) {
	if sql, ok := ConstantText(expr); ok {
		j.judgeInner(sql, where, depth)
		return
	}
	j.engineFinding(DynamicSQLRule, Level(j.e.cfg.OnDynamicSQL), Report{
		Message: fmt.Sprintf("EXECUTE %s runs SQL built at run time (%s), which pgguard cannot check; it may take any lock.", where, expr),
		Hint:    "-- write the statement out as plain SQL so that it can be checked, or, if it is safe, add:\n" + AllowAnnotation(j.sc.Tool, DynamicSQLRule, "..."),
	})
}

// stringLiteral returns the value of expr when it is one string constant.
func stringLiteral(expr string) (string, bool) {
	node, err := sqltext.ParseStatement("SELECT "+expr, sqltext.DefaultMaxStatementBytes)
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
			j.found[i].Message = Capitalize(where) + ": " + j.found[i].Message
		}
	}
	walk(body, 0)
}

// analyzes reports whether EXPLAIN's options include ANALYZE (not
// ANALYZE false).
func analyzes(opts []*pg_query.Node) bool {
	for _, o := range opts {
		de := o.GetDefElem()
		if de == nil || de.Defname != "analyze" {
			continue
		}
		if de.Arg == nil {
			return true
		}
		v, _ := ConstString(de.Arg)
		if v == "" {
			v = de.GetArg().GetString_().GetSval()
		}
		switch strings.ToLower(v) {
		case "false", "off", "0", "no":
			return false
		}
		return true
	}
	return false
}

// wrappedText returns the statement inside EXPLAIN [options] <statement>
// or PREPARE name [(types)] AS <statement>: the text after the options of
// EXPLAIN, or after PREPARE's AS; "" if it cannot be found.
func wrappedText(text, verb string) string {
	lx := sqltext.Lexer{Src: text}
	next := func() sqltext.Token {
		for {
			if t := lx.Next(); t.Kind != sqltext.TokComment {
				return t
			}
		}
	}
	if !next().WordIs(text, verb) {
		return ""
	}
	depth := 0
	for {
		t := next()
		switch {
		case t.Kind == sqltext.TokEOF || t.Kind == sqltext.TokSemi:
			return ""
		case t.Kind == sqltext.TokOpen:
			depth++
		case t.Kind == sqltext.TokClose:
			depth--
		case depth > 0:
		case verb == "prepare":
			if t.WordIs(text, "as") {
				return strings.TrimSpace(text[t.End:])
			}
		case t.Kind == sqltext.TokWord:
			for _, opt := range []string{"analyze", "analyse", "verbose"} {
				if t.WordIs(text, opt) {
					t.Kind = sqltext.TokComment
				}
			}
			if t.Kind == sqltext.TokWord {
				return text[t.Start:]
			}
		}
	}
}

// functionAs returns the strings of a CREATE FUNCTION's AS clause.
func functionAs(opts []*pg_query.Node) []string {
	var out []string
	for _, o := range opts {
		de := o.GetDefElem()
		if de == nil || de.Defname != "as" {
			continue
		}
		for _, item := range de.GetArg().GetList().GetItems() {
			if s := item.GetString_(); s != nil {
				out = append(out, s.Sval)
			}
		}
	}
	return out
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

// constantText returns the text an EXECUTE's expression always yields: a
// string literal, or format() of a literal format string with literal
// arguments (%s, %I, %L and %%, as PostgreSQL's format does them). ok is
// false for anything built at run time.
func ConstantText(expr string) (string, bool) {
	if sql, ok := stringLiteral(expr); ok {
		return sql, true
	}
	node, err := sqltext.ParseStatement("SELECT "+expr, sqltext.DefaultMaxStatementBytes)
	if err != nil {
		return "", false
	}
	sel := node.GetSelectStmt()
	if sel == nil || len(sel.TargetList) != 1 {
		return "", false
	}
	fc := sel.TargetList[0].GetResTarget().GetVal().GetFuncCall()
	if fc == nil || len(fc.Args) == 0 || fc.AggStar || fc.FuncVariadic || len(fc.AggOrder) > 0 || fc.AggFilter != nil || fc.Over != nil {
		return "", false
	}
	if name := NameList(fc.Funcname); name != "format" && name != "pg_catalog.format" {
		return "", false
	}
	var args []*string // nil: NULL
	for _, a := range fc.Args {
		if tc := a.GetTypeCast(); tc != nil {
			a = tc.Arg
		}
		c := a.GetAConst()
		if c == nil {
			return "", false
		}
		switch {
		case c.Isnull:
			args = append(args, nil)
		case c.GetSval() != nil:
			s := c.GetSval().Sval
			args = append(args, &s)
		case c.GetIval() != nil:
			s := strconv.FormatInt(int64(c.GetIval().Ival), 10)
			args = append(args, &s)
		default:
			return "", false
		}
	}
	if args[0] == nil {
		return "", false
	}
	return formatText(*args[0], args[1:])
}

// formatText is PostgreSQL's format() for %s, %I, %L and %% (no widths or
// positions: those are not folded).
func formatText(f string, args []*string) (string, bool) {
	var b strings.Builder
	next := 0
	for i := 0; i < len(f); i++ {
		if f[i] != '%' {
			b.WriteByte(f[i])
			continue
		}
		if i++; i >= len(f) {
			return "", false
		}
		if f[i] == '%' {
			b.WriteByte('%')
			continue
		}
		if next >= len(args) {
			return "", false
		}
		a := args[next]
		next++
		switch f[i] {
		case 's':
			if a != nil {
				b.WriteString(*a)
			}
		case 'I':
			if a == nil {
				return "", false // format raises an error
			}
			b.WriteString(QuoteIdent(*a))
		case 'L':
			if a == nil {
				b.WriteString("NULL")
			} else {
				b.WriteString(formatLiteral(*a))
			}
		default:
			return "", false
		}
	}
	return b.String(), true
}

// formatLiteral quotes s as format's %L does (E” when it holds a
// backslash, as quote_literal does).
func formatLiteral(s string) string {
	q := "'" + strings.ReplaceAll(s, "'", "''") + "'"
	if strings.Contains(s, `\`) {
		return "E" + strings.ReplaceAll(q, `\`, `\\`)
	}
	return q
}

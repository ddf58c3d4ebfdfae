package policy

import (
	"fmt"
	"sort"
	"strings"

	"github.com/pgguard/pgguard/policy/sqltext"

	pg_query "github.com/pganalyze/pg_query_go/v6"
)

// judgeCalled judges the bodies of the user functions and procedures that
// a statement running now calls (SELECT f(), CALL p(), an UPDATE whose SET
// calls one) as the statements of a DO block are: every rule sees them,
// and what they lock is the statement's lock, so that it gets pgguard's
// lock_timeout and the look before queueing, and a set_config of
// lock_timeout in them is refused as one in the Query would be. It does so
// in a migration's session, and for the statements of a Query that holds
// DDL (Context.QueryHasDDL), and for an application's statement that
// calls a function that is not built in (CallsUserFunction: no parse
// otherwise), whose bodies count only for the locks they take; the
// session's memo of bodies (pgcatalog.SessionMemo) answers again without
// a round trip. Only SQL and PL/pgSQL functions that are VOLATILE (the others
// cannot change anything) and outside pg_catalog are read
// (FunctionCatalog), each once per statement, nested calls to maxNesting.
// Rows changed by a body are rule large-dml's own business (it multiplies
// them by how often the body runs), so its findings on the inner
// statements are left out (Check.Called).
func (j *judgement) judgeCalled(node *pg_query.Node, depth int) {
	if !(j.sc.Migration || j.sc.QueryHasDDL || j.appCalls) || j.sc.Catalog == nil {
		return
	}
	switch node.GetNode().(type) {
	case *pg_query.Node_SelectStmt, *pg_query.Node_InsertStmt, *pg_query.Node_UpdateStmt, *pg_query.Node_DeleteStmt,
		*pg_query.Node_MergeStmt, *pg_query.Node_CallStmt, *pg_query.Node_CreateTableAsStmt:
	default:
		return
	}
	fc, ok := j.sc.Catalog.(FunctionCatalog)
	if !ok {
		return
	}
	names := CalledNames(node)
	if len(names) == 0 {
		return
	}
	fns, ok := fc.FunctionBodies(j.ctx, names)
	if !ok {
		return
	}
	if j.called == nil {
		j.called = map[string]bool{}
	}
	outer := j.inCalled
	j.inCalled = true
	before := len(j.found)
	defer func() {
		j.inCalled = outer
		if j.appCalls {
			// An application's call: only what the bodies lock counts.
			j.found = j.found[:before]
		}
	}()
	for _, f := range fns {
		if j.called[f.Name] || f.Trigger {
			continue
		}
		j.called[f.Name] = true
		where := fmt.Sprintf("in function %s, which the statement calls", f.Name)
		if f.Language == "sql" {
			for _, st := range sqltext.SplitStrings(f.Body, false) {
				j.judgeInner(st.Text, where, depth)
			}
			continue
		}
		js, err := ParsePlpgsql(PlpgsqlFunctionText(f, "void"))
		if err != nil {
			continue // rule large-dml says what it cannot read
		}
		j.walkPlpgsqlJSON(js, where, depth)
	}
}

// CalledNames lists the functions and procedures a statement calls, as
// written, sorted.
func CalledNames(n *pg_query.Node) []string {
	seen := map[string]bool{}
	add := func(f *pg_query.FuncCall) {
		if name := NameList(f.Funcname); name != "" {
			seen[name] = true
		}
	}
	if cs := n.GetCallStmt(); cs != nil && cs.Funccall != nil {
		add(cs.Funccall)
	}
	Walk(n, func(x *pg_query.Node) bool {
		if f := x.GetFuncCall(); f != nil {
			add(f)
		}
		return true
	})
	out := make([]string, 0, len(seen))
	for name := range seen {
		out = append(out, name)
	}
	sort.Strings(out)
	return out
}

// PlpgsqlFunctionText is a CREATE FUNCTION of f's PL/pgSQL body with its
// arguments, returning returns, for the PL/pgSQL parser: the body's
// variables are then known by name, and its dollar quote is one the body
// does not hold.
func PlpgsqlFunctionText(f Function, returns string) string {
	var args []string
	for _, a := range f.Args {
		name := ""
		if a.Name != "" {
			name = QuoteIdent(a.Name)
		}
		args = append(args, strings.TrimSpace(name+" "+a.Type))
	}
	tag := "pgguard"
	for strings.Contains(f.Body, "$"+tag+"$") {
		tag += "x"
	}
	return "CREATE FUNCTION pgguard_body(" + strings.Join(args, ", ") + ") RETURNS " + returns + " LANGUAGE plpgsql AS $" + tag + "$" + f.Body + "$" + tag + "$"
}

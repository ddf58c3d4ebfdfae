package policy

import (
	"context"
	"github.com/pgguard/pgguard/policy/sqltext"
	"strings"

	pg_query "github.com/pganalyze/pg_query_go/v6"
)

// A migration's EXECUTE of an SQL-level prepared statement (PREPARE p(int)
// AS UPDATE ...; EXECUTE p(42)) changes the rows the prepared UPDATE or
// DELETE picks with the values EXECUTE passes. Before PostgreSQL 16 the
// planner cannot estimate the prepared text with $1 unbound, so, like a
// Bind's values, EXECUTE's are substituted for the parameters (cast to the
// types the statement was prepared with) and the statement is judged as
// that UPDATE or DELETE: estimated, counted, refused when large.

// PreparedCatalog is an optional Catalog extension: the session's
// SQL-level prepared statements (pg_prepared_statements).
type PreparedCatalog interface {
	// PreparedStatement returns the text a statement name was prepared
	// with (the whole PREPARE, as sent) and its parameter types.
	PreparedStatement(ctx context.Context, name string) (statement string, types []string, ok bool)
}

// executedText returns the statement an EXECUTE runs, with its arguments
// in place of the parameters, when it is an UPDATE, DELETE or MERGE
// prepared earlier in the same Query (prepared), in the same unsynced
// batch (Context.BatchPrepared) or in the session (the catalog).
func executedText(ctx context.Context, sc *Context, ex *pg_query.ExecuteStmt, prepared func(string) (string, bool)) (string, bool) {
	var text string
	var types []string
	if prepared != nil {
		text, _ = prepared(ex.Name)
	}
	if text == "" && sc.BatchPrepared != nil {
		text, _ = sc.BatchPrepared(ex.Name)
	}
	if text == "" {
		pc, ok := sc.Catalog.(PreparedCatalog)
		if !ok {
			return "", false
		}
		if text, types, ok = pc.PreparedStatement(ctx, ex.Name); !ok {
			return "", false
		}
	}
	res, err := sqltext.PgParse(text)
	if err != nil || len(res.Stmts) != 1 {
		return "", false
	}
	query := res.Stmts[0].Stmt
	if ps := query.GetPrepareStmt(); ps != nil {
		query = ps.Query
		if len(types) == 0 {
			for _, a := range ps.Argtypes {
				types = append(types, DeparseType(a.GetTypeName()))
			}
		}
	} // else a statement prepared by a Parse message: its text alone
	if query == nil || (query.GetUpdateStmt() == nil && query.GetDeleteStmt() == nil && query.GetMergeStmt() == nil) {
		return "", false
	}
	inner := Deparse(query)
	if inner == "" {
		return "", false
	}
	args := make([]string, len(ex.Params))
	for i, p := range ex.Params {
		if args[i] = DeparseExpr(p); args[i] == "" {
			return "", false
		}
	}
	return sqltext.ReplaceParams(inner, func(n int) (string, bool) {
		if n > len(args) {
			return "", false // the server refuses the EXECUTE
		}
		v := "(" + args[n-1] + ")"
		if n <= len(types) && types[n-1] != "" && types[n-1] != "unknown" {
			v += "::" + types[n-1]
		}
		return v, true
	})
}

// DeparseType returns a type name as SQL ("" when it cannot).
func DeparseType(t *pg_query.TypeName) string {
	if t == nil {
		return ""
	}
	param := &pg_query.Node{Node: &pg_query.Node_ParamRef{ParamRef: &pg_query.ParamRef{Number: 1}}}
	cast := &pg_query.Node{Node: &pg_query.Node_TypeCast{TypeCast: &pg_query.TypeCast{Arg: param, TypeName: t}}}
	sel := &pg_query.Node{Node: &pg_query.Node_SelectStmt{SelectStmt: &pg_query.SelectStmt{
		TargetList: []*pg_query.Node{{Node: &pg_query.Node_ResTarget{ResTarget: &pg_query.ResTarget{Val: cast}}}},
	}}}
	out := strings.TrimPrefix(Deparse(sel), "SELECT $1::")
	if strings.HasPrefix(out, "SELECT") {
		return ""
	}
	return out
}

// PreparesFor reports whether a statement text, prepared by a Parse or run
// as a PREPARE, is one an EXECUTE may run as an UPDATE, DELETE or MERGE
// (executedText): what a batch must remember for an EXECUTE after it.
// name is the name a PREPARE prepares ("" for another statement).
func PreparesFor(text string) (name string, keep bool) {
	switch {
	case sqltext.FirstWordIs(text, "prepare"):
		res, err := sqltext.PgParse(text)
		if err != nil || len(res.Stmts) != 1 {
			return "", false
		}
		if ps := res.Stmts[0].Stmt.GetPrepareStmt(); ps != nil {
			return ps.Name, true
		}
		return "", false
	case sqltext.FirstWordIs(text, "update"), sqltext.FirstWordIs(text, "delete"),
		sqltext.FirstWordIs(text, "merge"), sqltext.FirstWordIs(text, "with"):
		return "", true
	}
	return "", false
}

package policy

import (
	"strconv"

	pg_query "github.com/pganalyze/pg_query_go/v6"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// maxWalkDepth bounds Walk; parse trees deeper than this are not looked
// into further (the parser refuses much deeper input anyway).
const maxWalkDepth = 1000

// Walk calls fn for every *pg_query.Node inside msg (a node or any part of
// one), parents before children. fn returns false to skip a node's
// children.
func Walk(msg proto.Message, fn func(*pg_query.Node) bool) {
	if msg == nil {
		return
	}
	walk(msg.ProtoReflect(), fn, 0)
}

func walk(m protoreflect.Message, fn func(*pg_query.Node) bool, depth int) {
	if depth > maxWalkDepth || !m.IsValid() {
		return
	}
	if n, ok := m.Interface().(*pg_query.Node); ok && !fn(n) {
		return
	}
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		switch {
		case fd.IsList() && fd.Message() != nil:
			l := v.List()
			for i := 0; i < l.Len(); i++ {
				walk(l.Get(i).Message(), fn, depth+1)
			}
		case !fd.IsList() && !fd.IsMap() && fd.Message() != nil:
			walk(v.Message(), fn, depth+1)
		}
		return true
	})
}

// Created reports whether t was created in the open transaction (or
// earlier in the linted file).
func (c *Check) Created(t Table) bool { return createdIn(c.Ctx, c.Session, t) }

// withQueries returns the queries of a statement's WITH clause.
func WithQueries(n *pg_query.Node) []*pg_query.Node {
	var w *pg_query.WithClause
	switch s := n.GetNode().(type) {
	case *pg_query.Node_SelectStmt:
		w = s.SelectStmt.WithClause
	case *pg_query.Node_InsertStmt:
		w = s.InsertStmt.WithClause
		if w == nil {
			// INSERT INTO t WITH ... SELECT: the WITH is the SELECT's.
			w = s.InsertStmt.GetSelectStmt().GetSelectStmt().GetWithClause()
		}
	case *pg_query.Node_UpdateStmt:
		w = s.UpdateStmt.WithClause
	case *pg_query.Node_DeleteStmt:
		w = s.DeleteStmt.WithClause
	case *pg_query.Node_MergeStmt:
		w = s.MergeStmt.WithClause
	case *pg_query.Node_CreateTableAsStmt:
		w = s.CreateTableAsStmt.GetQuery().GetSelectStmt().GetWithClause()
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

// constString returns the value of a string or integer constant (possibly
// cast, e.g. '5s'::text).
func ConstString(n *pg_query.Node) (string, bool) {
	if tc := n.GetTypeCast(); tc != nil {
		n = tc.Arg
	}
	c := n.GetAConst()
	switch {
	case c == nil:
		return "", false
	case c.GetSval() != nil:
		return c.GetSval().Sval, true
	case c.GetIval() != nil:
		return strconv.Itoa(int(c.GetIval().Ival)), true
	case c.GetFval() != nil:
		return c.GetFval().Fval, true
	}
	return "", false
}

package policy

import (
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

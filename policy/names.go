package policy

import (
	"strings"

	pg_query "github.com/pganalyze/pg_query_go/v6"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// maxIdentifierBytes is NAMEDATALEN - 1: PostgreSQL keeps the first 63 bytes
// of a longer name.
const maxIdentifierBytes = 64 - 1

// Table names a table (or index, or any relation) as written in a
// statement: Schema is empty when the name was not qualified.
type Table struct {
	Schema, Name string
}

// TableOf returns the Table a RangeVar names; the zero Table for nil.
func TableOf(rv *pg_query.RangeVar) Table {
	if rv == nil {
		return Table{}
	}
	return Table{Schema: rv.Schemaname, Name: rv.Relname}
}

// String returns the name as SQL, quoting each part when needed, e.g.
// public."JournalLine".
func (t Table) String() string {
	if t.Schema == "" {
		return QuoteIdent(t.Name)
	}
	return QuoteIdent(t.Schema) + "." + QuoteIdent(t.Name)
}

// QuoteIdent returns name as an SQL identifier: bare when PostgreSQL would
// read it back unchanged, double-quoted otherwise ("JournalLine", "user").
func QuoteIdent(name string) string {
	if name != "" && isBareIdent(name) && !reservedWords[name] {
		return name
	}
	return `"` + strings.ReplaceAll(name, `"`, `""`) + `"`
}

func isBareIdent(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '_' || ('a' <= c && c <= 'z'):
		case i > 0 && (c == '$' || ('0' <= c && c <= '9')):
		default:
			return false
		}
	}
	return true
}

// reservedWords are the keywords that cannot be bare column or table names
// (PostgreSQL's reserved, type/function-name and column-name keywords that
// trip people up most often); quoting one more identifier than needed is
// harmless.
var reservedWords = map[string]bool{}

func init() {
	for _, w := range strings.Fields(`all analyse analyze and any array as asc asymmetric authorization
		between bigint binary bit boolean both case cast char character check coalesce collate collation
		column concurrently constraint create cross current_catalog current_date current_role
		current_schema current_time current_timestamp current_user dec decimal default deferrable desc
		distinct do else end except exists extract false fetch float for foreign freeze from full grant
		greatest group grouping having ilike in initially inner inout int integer intersect interval into
		is isnull join lateral leading least left like limit localtime localtimestamp national natural
		nchar none normalize not notnull null nullif numeric offset on only or order out outer overlaps
		overlay placing position precision primary real references returning right row select
		session_user setof similar smallint some substring symmetric system_user table tablesample then
		time timestamp to trailing treat trim true union unique user using values varchar variadic verbose
		when where window with xmlattributes xmlconcat xmlelement xmlexists xmlforest xmlnamespaces
		xmlparse xmlpi xmlroot xmlserialize xmltable`) {
		reservedWords[w] = true
	}
}

// nameList joins the String nodes of a qualified name (function or type
// names) with dots, unquoted, e.g. "pg_catalog.now".
func NameList(nodes []*pg_query.Node) string {
	parts := make([]string, 0, len(nodes))
	for _, n := range nodes {
		if s := n.GetString_(); s != nil {
			parts = append(parts, s.Sval)
		}
	}
	return strings.Join(parts, ".")
}

// namesOtherDatabase reports whether a statement names a relation of
// another database than db (otherdb.schema.name): PostgreSQL fails it
// before it locks or changes anything (0A000, cross-database references
// are not implemented), so no rule has anything to refuse, and the client
// gets the server's own error. "" (pgguard lint) knows no database.
// Bodies of DO blocks and functions are text here, not looked into.
func namesOtherDatabase(n *pg_query.Node, db string) bool {
	if db == "" || n == nil || len(db) >= maxIdentifierBytes {
		// PostgreSQL cuts a longer name (startup packet and SQL alike)
		// to 63 bytes, each its own way: leave it to the rules.
		return false
	}
	other := func(name string) bool { return name != "" && name != db && len(name) < maxIdentifierBytes }
	if d := n.GetDropStmt(); d != nil {
		switch d.RemoveType {
		case pg_query.ObjectType_OBJECT_TABLE, pg_query.ObjectType_OBJECT_INDEX, pg_query.ObjectType_OBJECT_VIEW,
			pg_query.ObjectType_OBJECT_MATVIEW, pg_query.ObjectType_OBJECT_SEQUENCE, pg_query.ObjectType_OBJECT_FOREIGN_TABLE:
			for _, o := range d.Objects {
				if l := o.GetList(); l != nil && len(l.Items) == 3 && other(l.Items[0].GetString_().GetSval()) {
					return true
				}
			}
		}
	}
	found := false
	var visit func(m protoreflect.Message, depth int)
	visit = func(m protoreflect.Message, depth int) {
		if found || depth > maxWalkDepth || !m.IsValid() {
			return
		}
		if rv, ok := m.Interface().(*pg_query.RangeVar); ok && other(rv.Catalogname) {
			found = true
			return
		}
		m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
			switch {
			case fd.IsList() && fd.Message() != nil:
				l := v.List()
				for i := 0; i < l.Len(); i++ {
					visit(l.Get(i).Message(), depth+1)
				}
			case !fd.IsList() && !fd.IsMap() && fd.Message() != nil:
				visit(v.Message(), depth+1)
			}
			return !found
		})
	}
	visit(n.ProtoReflect(), 0)
	return found
}

// UpsertSourceAlias names the subquery that rule large-dml's estimate and
// count of an upsert (INSERT ... SELECT ... ON CONFLICT DO UPDATE) wrap its
// SELECT in: SELECT 1 FROM (<its SELECT>) AS pgguard_source. The rows of
// such a SELECT may come from any table it reads (a join, a WITH query, a
// UNION), where the SELECT forms of UPDATE, DELETE and MERGE count rows of
// their target, the first table of their FROM: a catalog that scales an
// estimate to another database's sizes (pgcatalog.Borrowed) tells them
// apart by it.
const UpsertSourceAlias = "pgguard_source"

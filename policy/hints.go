package policy

import (
	"strings"
	"sync"

	pg_query "github.com/pganalyze/pg_query_go/v6"
	"google.golang.org/protobuf/proto"
)

// Shared wording and SQL builders for rules' messages and hints.

// OutsideTransactionHint is the comment that precedes a recipe statement
// that must run on its own, outside any transaction block.
const OutsideTransactionHint = "-- run this on its own, outside any transaction block and as the only statement of its query\n" +
	"-- (sequelize: queryInterface.sequelize.query(sql, { transaction: null }) in a migration that is not wrapped in a transaction;\n" +
	"-- Flyway: a migration of its own with executeInTransaction=false; psql: not inside BEGIN, nor with -1/--single-transaction):"

// BatchUpdateSQL is one batch of a backfill that needs no key column:
// run it again until it updates 0 rows.
func BatchUpdateSQL(t Table, column, value string) string {
	col := QuoteIdent(column)
	return "UPDATE " + t.String() + " SET " + col + " = " + value +
		" WHERE ctid = ANY (ARRAY(SELECT ctid FROM " + t.String() + " WHERE " + col + " IS NULL LIMIT 10000));"
}

// ConstraintName builds a constraint name from a table, a column and a
// suffix, within PostgreSQL's 63-byte limit.
func ConstraintName(t Table, column, suffix string) string {
	base := t.Name + "_" + column
	if max := 63 - len(suffix) - 1; len(base) > max {
		base = base[:max]
	}
	return base + "_" + suffix
}

// Deparse turns a statement node back into SQL ("" on failure). Use it
// for recipe statements built from parts of the original statement.
func Deparse(stmt *pg_query.Node) string {
	if stmt == nil {
		return ""
	}
	out, err := pg_query.Deparse(&pg_query.ParseResult{Version: parserVersion(), Stmts: []*pg_query.RawStmt{{Stmt: stmt}}})
	if err != nil {
		return ""
	}
	return out
}

// parserVersion is the parse tree version Deparse expects.
var parserVersion = sync.OnceValue(func() int32 {
	res, err := pg_query.Parse("SELECT 1")
	if err != nil {
		return 0
	}
	return res.Version
})

// DeparseExpr turns an expression node into SQL ("" on failure).
func DeparseExpr(expr *pg_query.Node) string {
	sel := &pg_query.Node{Node: &pg_query.Node_SelectStmt{SelectStmt: &pg_query.SelectStmt{
		TargetList: []*pg_query.Node{{Node: &pg_query.Node_ResTarget{ResTarget: &pg_query.ResTarget{Val: cloneNode(expr)}}}},
	}}}
	return strings.TrimPrefix(Deparse(sel), "SELECT ")
}

func cloneNode(n *pg_query.Node) *pg_query.Node {
	if n == nil {
		return nil
	}
	return proto.Clone(n).(*pg_query.Node)
}

// alterTable builds ALTER TABLE t <cmds> as a node, for Deparse.
func alterTable(t Table, cmds ...*pg_query.AlterTableCmd) *pg_query.Node {
	s := &pg_query.AlterTableStmt{Relation: &pg_query.RangeVar{Schemaname: t.Schema, Relname: t.Name, Inh: true, Relpersistence: "p"}, Objtype: pg_query.ObjectType_OBJECT_TABLE}
	for _, c := range cmds {
		s.Cmds = append(s.Cmds, &pg_query.Node{Node: &pg_query.Node_AlterTableCmd{AlterTableCmd: c}})
	}
	return &pg_query.Node{Node: &pg_query.Node_AlterTableStmt{AlterTableStmt: s}}
}

// AlterTableCmds returns the table and subcommands of an ALTER TABLE
// statement on a table (not an index, view or sequence); nil otherwise.
func AlterTableCmds(n *pg_query.Node) (Table, []*pg_query.AlterTableCmd) {
	s := n.GetAlterTableStmt()
	if s == nil || s.Objtype != pg_query.ObjectType_OBJECT_TABLE {
		return Table{}, nil
	}
	cmds := make([]*pg_query.AlterTableCmd, 0, len(s.Cmds))
	for _, c := range s.Cmds {
		if cmd := c.GetAlterTableCmd(); cmd != nil {
			cmds = append(cmds, cmd)
		}
	}
	return TableOf(s.Relation), cmds
}

// SQL returns the statement without the comments and blank lines that
// precede it, for use in hints.
func (c *Check) SQL() string {
	return stripLeadingComments(c.Text)
}

func stripLeadingComments(text string) string {
	t, _ := (&lexer{src: text}).nextCode()
	if t.kind == tokEOF {
		return text
	}
	return text[t.start:]
}

// nextCode returns the next token that is not a comment.
func (l *lexer) nextCode() (token, *lexer) {
	t := l.next()
	for t.kind == tokComment {
		t = l.next()
	}
	return t, l
}

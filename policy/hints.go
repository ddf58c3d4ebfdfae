package policy

import (
	"strconv"
	"strings"
	"sync"

	"github.com/pgguard/pgguard/policy/sqltext"

	pg_query "github.com/pganalyze/pg_query_go/v6"
	"google.golang.org/protobuf/proto"
)

// Shared wording and SQL builders for rules' messages and hints.

// OutsideTransactionHint is the comment that precedes a recipe statement
// that must run on its own, outside any transaction block, when the
// migration tool is not known (plain SQL). OutsideTransactionHintFor says
// it in a known tool's terms.
const OutsideTransactionHint = "-- run this on its own, outside any transaction block and as the only statement of its query\n" +
	"-- (psql: not inside BEGIN, nor with -1/--single-transaction; a migration tool: a migration of its own\n" +
	"-- that the tool runs without a transaction):"

// toolIdiom is how a migration tool runs a statement outside a
// transaction: fix is the one sentence that goes in the refusal's message
// (knex's migrator logs nothing else), hint the comment lines before the
// recipe. code is where the application declares a column (drop-column's
// first deployment). raw is how a migration sends a statement as written,
// comments and all, which a pgguard:allow annotation needs ("" when the
// migration is an SQL file already); lineComments is true when a "--"
// comment line written so reaches the server: psql (and so the unknown
// tool) drops the "--" lines before a statement, and the JVM tools' SQL
// parsers may too, so those get the /* */ form.
//
// indexFix, when set, is fix for a statement that builds an index
// (CREATE INDEX CONCURRENTLY), said with the tool's own operation for it
// (Django's AddIndexConcurrently, Rails' algorithm: :concurrently); fix
// is then how to run any other statement (ALTER TYPE ... ADD VALUE,
// VACUUM, REINDEX, DETACH PARTITION), which those operations do not run.
type toolIdiom struct {
	fix, hint    string
	indexFix     string
	code         string
	raw          string
	lineComments bool
}

var toolIdioms = map[Tool]toolIdiom{
	ToolSequelize: {
		fix: "in sequelize, run it in a migration that is not wrapped in a transaction, with queryInterface.sequelize.query(sql, { transaction: null })",
		hint: "-- sequelize: in a migration that is not wrapped in a transaction (no sequelize.transaction(...) around it):\n" +
			"--   await queryInterface.sequelize.query(`<the statement below>`, { transaction: null });",
		code:         "the model's attributes",
		raw:          "await queryInterface.sequelize.query(`<the annotation and the statement>`)",
		lineComments: true,
	},
	ToolKnex: {
		fix: "in knex, put it in a migration file of its own with exports.config = { transaction: false }",
		hint: "-- knex: a migration file of its own that runs without a transaction:\n" +
			"--   exports.config = { transaction: false };\n" +
			"--   exports.up = (knex) => knex.raw(`<the statement below>`);",
		code:         "the code that reads or writes it",
		raw:          "knex.raw(`<the annotation and the statement>`)",
		lineComments: true,
	},
	ToolTypeORM: {
		fix: "in TypeORM, put it in a migration of its own with transaction = false and run typeorm migration:run -t each",
		hint: "-- TypeORM: a migration of its own with the class property  transaction = false,\n" +
			"--   whose up() runs  await queryRunner.query(`<the statement below>`);\n" +
			"-- run with  typeorm migration:run -t each  (in the default mode \"all\" TypeORM refuses such a migration)",
		code:         "the entity's @Column",
		raw:          "await queryRunner.query(`<the annotation and the statement>`)",
		lineComments: true,
	},
	ToolNodePgMigrate: {
		fix: "in node-pg-migrate, put it in a migration of its own that calls pgm.noTransaction()",
		hint: "-- node-pg-migrate: a migration of its own that starts with  pgm.noTransaction();\n" +
			"--   then  pgm.createIndex(table, columns, { concurrently: true })  or  pgm.sql(`<the statement below>`)",
		code:         "the code that reads or writes it",
		raw:          "pgm.sql(`<the annotation and the statement>`)",
		lineComments: true,
	},
	ToolGolangMigrate: {
		fix: "in golang-migrate, put it alone in a migration file of its own, without BEGIN/COMMIT",
		hint: "-- golang-migrate: a migration file of its own (NNN_name.up.sql) holding only the statement below,\n" +
			"-- without BEGIN/COMMIT (golang-migrate sends a file as one query: with other statements it runs in a transaction)",
		code:         "the code that reads or writes it",
		lineComments: true,
	},
	ToolDjango: {
		fix:      "in Django, use a migration of its own with atomic = False that runs it with migrations.RunSQL",
		indexFix: "in Django, use a migration of its own with atomic = False and AddIndexConcurrently",
		hint: "-- Django: a migration of its own with  atomic = False  and the operation\n" +
			"--   AddIndexConcurrently(model_name, models.Index(fields=[...], name=...))  (django.contrib.postgres.operations),\n" +
			"--   or  migrations.RunSQL(\"<the statement below>\")",
		code: "the model's field",
		raw:  "migrations.RunSQL([\"<the annotation and the statement>\"]) (a list: RunSQL strips the comments of a single string)",
	},
	ToolRails: {
		fix:      "in Rails, use a migration of its own with disable_ddl_transaction! that runs it with execute",
		indexFix: "in Rails, use a migration of its own with disable_ddl_transaction! and algorithm: :concurrently",
		hint: "-- Rails: a migration of its own that calls  disable_ddl_transaction!  and\n" +
			"--   add_index :table, :column, algorithm: :concurrently   (or execute \"<the statement below>\")",
		code:         "the model (self.ignored_columns += [\"<column>\"])",
		raw:          "execute \"<the annotation and the statement>\"",
		lineComments: true,
	},
	ToolFlyway: {
		fix: "in Flyway, put it alone in a versioned migration of its own (or set executeInTransaction=false in its .sql.conf) and run flyway with -postgresql.transactional.lock=false",
		hint: "-- Flyway: a versioned migration of its own holding only the statement below (Flyway runs CREATE INDEX\n" +
			"-- CONCURRENTLY outside a transaction by itself), or executeInTransaction=false in its script\n" +
			"-- configuration file V<version>__<name>.sql.conf; and flyway.postgresql.transactional.lock=false\n" +
			"-- (-postgresql.transactional.lock=false): by default Flyway 10+ keeps a transaction open on a second\n" +
			"-- connection for its lock, and CREATE INDEX CONCURRENTLY waits for that transaction forever:",
		code: "the code that reads or writes it",
	},
	ToolLiquibase: {
		fix: "in Liquibase, put it in a changeset of its own with runInTransaction:false",
		hint: "-- Liquibase: a changeset of its own marked non-transactional\n" +
			"--   (formatted SQL: --changeset author:id runInTransaction:false; XML/YAML: runInTransaction=\"false\"):",
		code: "the code that reads or writes it",
	},
	ToolPrisma: {
		fix: "in Prisma, put it alone in a migration of its own (prisma/migrations/<name>/migration.sql)",
		hint: "-- Prisma: a migration of its own whose migration.sql holds only the statement below\n" +
			"-- (Prisma sends a migration.sql as one query: with other statements it runs in a transaction):",
		code:         "the field in schema.prisma",
		lineComments: true,
	},
}

// OutsideTransactionHintFor is OutsideTransactionHint in the terms of a
// migration tool; plain SQL's for ToolUnknown.
func OutsideTransactionHintFor(tool Tool) string {
	if i, ok := toolIdioms[tool]; ok {
		return i.hint
	}
	return OutsideTransactionHint
}

// OutsideTransactionFix is the sentence a refusal's message ends with
// when the fix is to run what (e.g. "CREATE INDEX CONCURRENTLY ON orders")
// outside a transaction: in the tool's terms, or plain.
func OutsideTransactionFix(tool Tool, what string) string {
	if i, ok := toolIdioms[tool]; ok {
		fix := i.fix
		if i.indexFix != "" && buildsIndex(what) {
			fix = i.indexFix
		}
		return "Fix: run " + what + " outside a transaction: " + fix + "."
	}
	return "Fix: run " + what + " alone, outside any transaction block (no BEGIN around it, not psql -1/--single-transaction; with a migration tool, a migration of its own that the tool runs without a transaction)."
}

// buildsIndex reports whether what, the statement a fix asks to run
// outside a transaction ("CREATE INDEX CONCURRENTLY", "CREATE UNIQUE
// INDEX CONCURRENTLY ON ..."), builds an index.
func buildsIndex(what string) bool {
	return strings.HasPrefix(what, "CREATE ") && strings.Contains(what, " INDEX")
}

// OutsideTransaction is OutsideTransactionHintFor the session's tool.
func (c *Check) OutsideTransaction() string { return OutsideTransactionHintFor(c.Session.Tool) }

// AllowAnnotation is a pgguard:allow annotation for rules (comma-separated
// ids) with reason, in the comment form that reaches pgguard from tool:
// "-- ..." for tools that send a statement's text as written, "/* ... */"
// for psql, which drops "--" lines before a statement (psql -f), and for
// an unknown tool.
func AllowAnnotation(tool Tool, rules, reason string) string {
	a := annotationPrefix + " " + rules + ` reason="` + reason + `"`
	if i, ok := toolIdioms[tool]; ok && i.lineComments {
		return "-- " + a
	}
	return "/* " + a + " */"
}

// AllowLines are the recipe lines that put AllowAnnotation before a
// statement: the annotation, preceded, for a tool whose migrations are
// not SQL files, by how to send it with the statement.
func AllowLines(tool Tool, rules, reason string) string {
	a := AllowAnnotation(tool, rules, reason)
	if i, ok := toolIdioms[tool]; ok && i.raw != "" {
		return "-- " + toolNames[tool] + ": send the annotation with the statement: " + i.raw + "\n" + a
	}
	return a
}

// Allow is AllowLines for the session's tool.
func (c *Check) Allow(rules, reason string) string { return AllowLines(c.Session.Tool, rules, reason) }

// CodeOf says where the session's tool's application declares a column;
// plainly, for an unknown tool.
func (c *Check) CodeOf() string {
	if i, ok := toolIdioms[c.Session.Tool]; ok && i.code != "" {
		return i.code
	}
	return "the code and its ORM models"
}

// toolNames are the tools as their users spell them.
var toolNames = map[Tool]string{
	ToolSequelize: "sequelize", ToolKnex: "knex", ToolTypeORM: "TypeORM", ToolNodePgMigrate: "node-pg-migrate",
	ToolGolangMigrate: "golang-migrate", ToolDjango: "Django", ToolRails: "Rails", ToolFlyway: "Flyway",
	ToolLiquibase: "Liquibase", ToolPrisma: "Prisma",
}

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
	res, err := sqltext.PgParse("SELECT 1")
	if err != nil {
		return 0
	}
	return res.Version
})

// DeparseExpr turns an expression node into SQL ("" on failure).
func DeparseExpr(expr *pg_query.Node) string {
	sel := &pg_query.Node{Node: &pg_query.Node_SelectStmt{SelectStmt: &pg_query.SelectStmt{
		TargetList: []*pg_query.Node{{Node: &pg_query.Node_ResTarget{ResTarget: &pg_query.ResTarget{Val: CloneNode(expr)}}}},
	}}}
	return strings.TrimPrefix(Deparse(sel), "SELECT ")
}

func CloneNode(n *pg_query.Node) *pg_query.Node {
	if n == nil {
		return nil
	}
	return proto.Clone(n).(*pg_query.Node)
}

// alterTable builds ALTER TABLE t <cmds> as a node, for Deparse.
func AlterTable(t Table, cmds ...*pg_query.AlterTableCmd) *pg_query.Node {
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
	t, _ := (&sqltext.Lexer{Src: text}).NextCode()
	if t.Kind == sqltext.TokEOF {
		return text
	}
	return text[t.Start:]
}

// AlreadyCommittedDetail is the sentence a refusal's detail ends with when
// the refused statement belongs to a migration that runs without a
// transaction (sequelize-cli) and earlier statements of that migration
// have already committed: the user must undo them, or make them
// re-runnable, before running the migration again. statements are those
// earlier statements as the client sent them, oldest first; the proxy
// keeps them per session from the last ledger record (RecordsMigration)
// on, in autocommit. "" when there are none.
func AlreadyCommittedDetail(statements []string) string {
	if len(statements) == 0 {
		return ""
	}
	var b strings.Builder
	b.WriteString("Already committed by this migration before it was refused, and not undone (the tool ran it without a transaction); undo them or make them re-runnable before running it again:")
	for i, s := range statements {
		b.WriteString("\n  " + strconv.Itoa(i+1) + ". " + strings.TrimRight(strings.TrimSpace(stripLeadingComments(s)), ";") + ";")
	}
	return b.String()
}

func JoinSentences(a, b string) string {
	if a == "" {
		return b
	}
	return a + " " + b
}

func Capitalize(s string) string {
	if s == "" || s[0] < 'a' || s[0] > 'z' {
		return s
	}
	return string(s[0]-'a'+'A') + s[1:]
}

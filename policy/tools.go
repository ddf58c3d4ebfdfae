package policy

import (
	pg_query "github.com/pganalyze/pg_query_go/v6"
	"github.com/pgguard/pgguard/policy/sqltext"
)

// Migration tools: which tool runs a session, recognised from the ledger
// tables it reads and writes and from application_name, so that refusals
// give the fix in that tool's own terms and a tool's bookkeeping on its
// ledger is not mistaken for an application's data.
//
// What each tool sends as application_name by default (checked against
// each tool's own runs through pgguard in internal/suites/tools): sequelize-cli,
// knex, TypeORM, node-pg-migrate (node-postgres), golang-migrate (lib/pq)
// and Django (psycopg2) send none; Rails (ruby-pg) sends the program's
// name (rails, rake, or the script's); pgjdbc, which Flyway and Liquibase
// use, sends "PostgreSQL JDBC Driver" for both (Flyway sets "Flyway by
// Redgate" under the key applicationName, which pgjdbc does not read: its
// key is ApplicationName), and sends it with a SET after the startup
// packet unless the URL says assumeMinServerVersion=9.0 or later. The
// ledger is therefore the main signal; application_name only helps when a
// user sets it to the tool's name, in the startup packet or later with a
// SET (the proxy follows the value the server reports in ParameterStatus).
//
// Flyway (10 and later, by default on PostgreSQL) runs the migrations on a
// connection of its own that never touches flyway_schema_history; from
// 10.15 on, every Flyway connection first asks
// "SELECT rolname FROM pg_roles WHERE rolname ILIKE 'rds_superuser';"
// (PostgreSQLConnection.rdsAdminExists), which ToolSense takes as a
// provisional sign of Flyway.

// Tool is a migration tool pgguard recognises; the zero Tool is unknown.
type Tool string

// The migration tools pgguard knows.
const (
	ToolUnknown       Tool = ""
	ToolSequelize     Tool = "sequelize"
	ToolKnex          Tool = "knex"
	ToolTypeORM       Tool = "typeorm"
	ToolNodePgMigrate Tool = "node-pg-migrate"
	ToolGolangMigrate Tool = "golang-migrate"
	ToolDjango        Tool = "django"
	ToolRails         Tool = "rails"
	ToolFlyway        Tool = "flyway"
	ToolLiquibase     Tool = "liquibase"
	ToolPrisma        Tool = "prisma"
)

// Tools lists the known tools, in the order docs and tests use.
var Tools = []Tool{ToolSequelize, ToolKnex, ToolTypeORM, ToolNodePgMigrate, ToolGolangMigrate,
	ToolDjango, ToolRails, ToolFlyway, ToolLiquibase, ToolPrisma}

// ledger is a table a migration tool keeps its bookkeeping in, under its
// default name. Names compare as PostgreSQL stores them (SequelizeMeta is
// created quoted, the others in lower case).
type ledger struct {
	name string
	tool Tool
}

// ledgers are the default ledger tables. schema_migrations belongs to both
// golang-migrate and Rails: ToolSense tells them apart by golang-migrate's
// "dirty" column and Rails' ar_internal_metadata.
var ledgers = []ledger{
	{"SequelizeMeta", ToolSequelize},
	{"knex_migrations", ToolKnex},
	{"knex_migrations_lock", ToolKnex},
	{"pgmigrations", ToolNodePgMigrate},
	{"schema_migrations", ToolGolangMigrate}, // or Rails
	{"ar_internal_metadata", ToolRails},
	{"django_migrations", ToolDjango},
	{"flyway_schema_history", ToolFlyway},
	{"databasechangelog", ToolLiquibase},
	{"databasechangeloglock", ToolLiquibase},
	{"_prisma_migrations", ToolPrisma},
	// Last: the most common word. ToolSense takes it only quoted, as
	// TypeORM always writes it ("migrations", 'migrations'), so that a
	// comment about migrations names no tool.
	{"migrations", ToolTypeORM},
}

// IsLedgerTable reports whether t is, by its name, the ledger table of a
// migration tool, and whose (for schema_migrations: golang-migrate, which
// Rails shares the name with). The schema is not looked at: tools can be
// told to keep their ledger in any schema.
func IsLedgerTable(t Table) (Tool, bool) {
	for _, l := range ledgers {
		if t.Name == l.name {
			return l.tool, true
		}
	}
	return ToolUnknown, false
}

// ToolFromApplicationName recognises a tool whose name the session's
// application_name contains ("knex", "my-app django migrate"), ignoring
// case; ToolUnknown otherwise. pgjdbc's default "PostgreSQL JDBC Driver"
// says nothing about Flyway or Liquibase.
func ToolFromApplicationName(name string) Tool {
	if name == "" {
		return ToolUnknown
	}
	for _, t := range Tools {
		if sqltext.ContainsFold(name, string(t)) {
			return t
		}
	}
	switch {
	case sqltext.ContainsFold(name, "pg-migrate"), sqltext.ContainsFold(name, "pgmigrate"):
		return ToolNodePgMigrate
	case sqltext.ContainsFold(name, "activerecord"), name == "rake", name == "bin/rails", name == "bin/rake":
		// ruby-pg sends the program's name: rails db:migrate or rake db:migrate.
		return ToolRails
	}
	return ToolUnknown
}

// ToolSenseStatements is how many statements of a session ToolSense looks
// at: every tool reads its ledger before it runs its first migration.
const ToolSenseStatements = 64

// ToolSense works out which migration tool drives a session from the
// statements it sends. The proxy keeps one per session and calls Observe
// with each statement's text (any statement: ledger reads are plain
// SELECTs) before it judges it; Tool goes into Context.Tool. The zero
// value is ready to use. Observe does not allocate, keeps no reference to
// the text, and stops looking after ToolSenseStatements statements or once
// the tool is certain. A ToolSense is not safe for concurrent use.
type ToolSense struct {
	tool    Tool
	certain bool
	seen    int
}

// Observe looks at one statement's text for a ledger table.
func (s *ToolSense) Observe(text string) {
	if s.certain || s.seen >= ToolSenseStatements {
		return
	}
	s.seen++
	if s.tool == ToolUnknown && sqltext.ContainsFold(text, "rds_superuser") && sqltext.ContainsFold(text, "pg_roles") {
		s.tool = ToolFlyway // provisional: Flyway's probe on every connection
		return
	}
	if !mayNameLedger(text) {
		return
	}
	if knexLock(text) {
		s.tool, s.certain = ToolKnex, true
		return
	}
	if nodePgMigrateLock(text) {
		s.tool, s.certain = ToolNodePgMigrate, true
		return
	}
	for _, l := range ledgers {
		if l.tool == ToolTypeORM {
			// Only in TypeORM's own shapes: its hasTable question and its
			// query builder's alias. knex, node-pg-migrate and others are
			// often told to call their ledger "migrations" too, and send
			// select "name" from "migrations" or table_name = 'migrations'.
			if !sqltext.ContainsFold(text, `"table_name" = 'migrations'`) && !sqltext.ContainsFold(text, `"migrations" "migrations"`) {
				continue
			}
		} else if !containsName(text, l.name) {
			continue
		}
		t := l.tool
		if l.name == "schema_migrations" {
			// golang-migrate reads "version, dirty" before anything else;
			// Rails never mentions a dirty column. Other tools keep a
			// schema_migrations too (Ecto, dbmate): only Rails' own shapes
			// (Arel's qualified column, its CREATE TABLE) say Rails, until
			// ar_internal_metadata makes it certain.
			if !sqltext.ContainsFold(text, "dirty") {
				if s.tool == ToolUnknown && railsLedger(text) {
					s.tool = ToolRails // provisional
				}
				continue
			}
		}
		s.tool, s.certain = t, true
		return
	}
}

// Quiet reports whether Observe(text) would only count the statement,
// leaving Tool as it is.
func (s *ToolSense) Quiet(text string) bool {
	if s.certain || s.seen >= ToolSenseStatements {
		return true
	}
	if s.tool == ToolUnknown && sqltext.ContainsFold(text, "rds_superuser") && sqltext.ContainsFold(text, "pg_roles") {
		return false
	}
	return !mayNameLedger(text)
}

// railsLedger reports whether a statement is ActiveRecord's read or
// creation of schema_migrations:
// SELECT "schema_migrations"."version" FROM "schema_migrations" ... and
// CREATE TABLE "schema_migrations" ("version" character varying NOT NULL PRIMARY KEY).
func railsLedger(text string) bool {
	return sqltext.ContainsFold(text, `"schema_migrations"."version"`) ||
		sqltext.ContainsFold(text, `"schema_migrations" ("version" character varying`)
}

// nodePgMigrateLock reports whether a statement is node-pg-migrate's
// advisory lock, taken before its first migration whatever its ledger is
// called (--migrations-table) and whichever lock key it is given:
// SELECT pg_try_advisory_lock(<key>) AS "lockObtained" (or
// pg_advisory_lock, --advisory-lock-mode wait).
func nodePgMigrateLock(text string) bool {
	return sqltext.ContainsFold(text, `as "lockobtained"`) && sqltext.ContainsFold(text, "advisory_lock(")
}

// knexLock reports whether a statement is knex's creation or taking of
// its lock row, whatever its ledger is called (knexfile
// migrations.tableName renames both tables, not the lock's column):
// create table "<ledger>_lock" ("index" serial primary key, "is_locked" integer)
// and update "<ledger>_lock" set "is_locked" = $1 where "is_locked" = $2,
// both sent before the first migration.
func knexLock(text string) bool {
	return sqltext.ContainsFold(text, `set "is_locked" = $1 where "is_locked" = $2`) ||
		sqltext.ContainsFold(text, `("index" serial primary key, "is_locked" integer)`)
}

// mayNameLedger is Observe's quick test: every default ledger name but
// three contains "migrations"; knex's lock table has an "is_locked" column,
// node-pg-migrate's lock answers as "lockObtained".
func mayNameLedger(text string) bool {
	return sqltext.ContainsFold(text, "migrations") || sqltext.ContainsFold(text, `"is_locked"`) || sqltext.ContainsFold(text, `"lockobtained"`) || sqltext.ContainsFold(text, "sequelizemeta") ||
		sqltext.ContainsFold(text, "databasechangelog") || sqltext.ContainsFold(text, "flyway_schema_history") ||
		sqltext.ContainsFold(text, "ar_internal_metadata")
}

// Tool returns the tool recognised so far (ToolUnknown when none).
func (s *ToolSense) Tool() Tool { return s.tool }

// containsName reports whether text contains name as a whole identifier
// (not as part of a longer one), ignoring ASCII case: "migrations" is in
// `FROM "migrations"` but not in `FROM knex_migrations`.
func containsName(text, name string) bool {
	for i := 0; i+len(name) <= len(text); i++ {
		if i > 0 && isIdentByte(text[i-1]) {
			continue
		}
		j := 0
		for j < len(name) && sqltext.Lower(text[i+j]) == sqltext.Lower(name[j]) {
			j++
		}
		if j == len(name) && (i+j == len(text) || !isIdentByte(text[i+j])) {
			return true
		}
	}
	return false
}

func isIdentByte(b byte) bool {
	return b == '_' || b == '$' || b >= '0' && b <= '9' || b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= 0x80
}

// WaitsForAdvisoryLock reports whether a statement waits for a
// session-level or transaction-level advisory lock
// (pg_advisory_lock, pg_advisory_xact_lock and their _shared forms, not the
// pg_try_ forms, which never wait). golang-migrate, node-pg-migrate in its
// wait mode, Prisma and Flyway serialise concurrent runs this way. An
// advisory lock blocks no one's reads or writes, so the session's short
// lock_timeout must not cut the wait: the proxy lifts it around such a
// statement as it does for CONCURRENTLY, so that a second migrator waits
// for the first as it would on a direct connection.
func WaitsForAdvisoryLock(text string) bool {
	if !sqltext.ContainsFold(text, "pg_advisory_") {
		return false
	}
	for i := 0; i+len("pg_advisory_") <= len(text); i++ {
		if i > 0 && isIdentByte(text[i-1]) {
			continue // pg_try_advisory_lock
		}
		if !hasPrefixFold(text[i:], "pg_advisory_") {
			continue
		}
		rest := text[i+len("pg_advisory_"):]
		if hasPrefixFold(rest, "lock") || hasPrefixFold(rest, "xact_lock") {
			if !hasPrefixFold(rest, "unlock") {
				return true
			}
		}
	}
	return false
}

func hasPrefixFold(s, prefix string) bool {
	if len(s) < len(prefix) {
		return false
	}
	for i := 0; i < len(prefix); i++ {
		if sqltext.Lower(s[i]) != sqltext.Lower(prefix[i]) {
			return false
		}
	}
	return true
}

// lockTables are the tables in which migration tools keep the row that
// serialises two runs: knex takes it with
// update "knex_migrations_lock" set "is_locked" = $1 where "is_locked" = $2
// inside the transaction that runs the migrations, so a second run waits
// on the first one's row lock until the first commits; Liquibase polls
// databasechangeloglock with an UPDATE that waits only while another run's
// own UPDATE of the row is in flight.
var lockTables = []string{"knex_migrations_lock", "databasechangeloglock"}

// isLockTable reports whether a table name is a migration tool's lock table.
func isLockTable(name string) bool {
	for _, l := range lockTables {
		if name == l {
			return true
		}
	}
	return false
}

// WritesOnlyToolLockTable reports whether a statement is one UPDATE,
// DELETE or INSERT of a migration tool's lock table (knex_migrations_lock,
// databasechangeloglock, in any schema) that reads no other table and
// calls no function but now(): what it can wait for is only another run
// of the same tool holding the lock row, which blocks nobody's reads or
// writes. A CTE, a subquery or a function call makes it something else.
// Text that names no lock table is not parsed.
func WritesOnlyToolLockTable(text string) bool {
	named := false
	for _, l := range lockTables {
		named = named || sqltext.ContainsFold(text, l)
	}
	if !named {
		return false
	}
	res, err := sqltext.PgParse(text)
	if err != nil || len(res.Stmts) != 1 {
		return false
	}
	stmt := res.Stmts[0].Stmt
	var target *pg_query.RangeVar
	switch {
	case stmt.GetUpdateStmt() != nil:
		target = stmt.GetUpdateStmt().Relation
	case stmt.GetDeleteStmt() != nil:
		target = stmt.GetDeleteStmt().Relation
	case stmt.GetInsertStmt() != nil:
		target = stmt.GetInsertStmt().Relation
	}
	if target == nil || !isLockTable(target.Relname) {
		return false
	}
	only := true
	Walk(stmt, func(n *pg_query.Node) bool {
		switch x := n.GetNode().(type) {
		case *pg_query.Node_RangeVar:
			only = only && isLockTable(x.RangeVar.Relname)
		case *pg_query.Node_FuncCall:
			name := x.FuncCall.Funcname
			only = only && len(name) > 0 && len(name) <= 2 && len(x.FuncCall.Args) == 0 &&
				name[len(name)-1].GetString_().GetSval() == "now" &&
				(len(name) == 1 || name[0].GetString_().GetSval() == "pg_catalog")
		case *pg_query.Node_SubLink, *pg_query.Node_RangeSubselect, *pg_query.Node_RangeFunction,
			*pg_query.Node_WithClause, *pg_query.Node_CommonTableExpr, *pg_query.Node_RangeTableFunc:
			only = false
		}
		return only
	})
	return only
}

// WaitsForToolLock reports whether a statement waits only for the lock by
// which a migration tool serialises its runs: an advisory lock
// (WaitsForAdvisoryLock) or the row of its lock table
// (WritesOnlyToolLockTable). The proxy runs it without the session's short
// lock_timeout, so that a second migrator waits for the first as it would
// on a direct connection.
func WaitsForToolLock(text string) bool {
	return WaitsForAdvisoryLock(text) || WritesOnlyToolLockTable(text)
}

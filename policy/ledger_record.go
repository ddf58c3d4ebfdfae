package policy

import (
	"strconv"

	"github.com/pgguard/pgguard/policy/sqltext"
)

// LedgerRecord is a migration tool recording in its ledger that it applied
// a migration: the proxy's cue to count a migration
// (pgguard_migrations_total{tool,outcome}) and to name it in the audit log.
type LedgerRecord struct {
	Tool Tool
	// Name is the migration's name or version when the statement carries
	// it as a literal (node-pg-migrate, Django through psycopg2).
	Name string
	// Param is the number of the bind parameter ($n) that carries it when
	// the statement is parameterised (sequelize, knex, TypeORM,
	// golang-migrate, Rails); 0 otherwise.
	Param int
}

// ledgerNameColumns is the column of each ledger that names a migration.
var ledgerNameColumns = map[string]string{
	"SequelizeMeta":         "name",
	"knex_migrations":       "name",
	"migrations":            "name",
	"pgmigrations":          "name",
	"schema_migrations":     "version",
	"django_migrations":     "name",
	"flyway_schema_history": "script",
	"databasechangelog":     "id",
	"_prisma_migrations":    "migration_name",
}

// RecordsMigration reports whether a statement is a migration tool's
// INSERT into its ledger, and what it records. Statements that name no
// ledger are rejected without a parse and without allocating.
func RecordsMigration(text string) (LedgerRecord, bool) {
	if !sqltext.ContainsFold(text, "insert") || !mentionsLedger(text) {
		return LedgerRecord{}, false
	}
	res, err := sqltext.PgParse(text)
	if err != nil || len(res.Stmts) != 1 {
		return LedgerRecord{}, false
	}
	ins := res.Stmts[0].Stmt.GetInsertStmt()
	if ins == nil {
		return LedgerRecord{}, false
	}
	table := TableOf(ins.Relation)
	tool, ok := IsLedgerTable(table)
	col, named := ledgerNameColumns[table.Name]
	if !ok || !named {
		return LedgerRecord{}, false
	}
	rec := LedgerRecord{Tool: tool}
	idx, dirty := -1, false
	for i, c := range ins.Cols {
		switch c.GetResTarget().GetName() {
		case col:
			idx = i
		case "dirty":
			dirty = true
		}
	}
	if table.Name == "schema_migrations" && !dirty {
		rec.Tool = ToolRails // golang-migrate always writes its dirty flag
	}
	values := ins.SelectStmt.GetSelectStmt().GetValuesLists()
	if idx < 0 || len(values) != 1 {
		return rec, true
	}
	items := values[0].GetList().GetItems()
	if idx >= len(items) {
		return rec, true
	}
	v := items[idx]
	if tc := v.GetTypeCast(); tc != nil {
		v = tc.Arg
	}
	switch {
	case v.GetParamRef() != nil:
		rec.Param = int(v.GetParamRef().Number)
	case v.GetAConst() != nil:
		c := v.GetAConst()
		if s := c.GetSval(); s != nil {
			rec.Name = s.Sval
		} else if i := c.GetIval(); i != nil {
			rec.Name = strconv.Itoa(int(i.Ival))
		} else if f := c.GetFval(); f != nil {
			rec.Name = f.Fval // a bigint version too large for an int4 literal
		}
	}
	return rec, true
}

// MentionsLedger reports whether a statement names a migration tool's
// ledger (creating it, reading it, recording in it): the tool's
// bookkeeping, not part of a migration.
func MentionsLedger(text string) bool { return mentionsLedger(text) }

// mentionsLedger reports whether text names a ledger that records
// migrations.
func mentionsLedger(text string) bool {
	for name := range ledgerNameColumns {
		if containsName(text, name) {
			return true
		}
	}
	return false
}

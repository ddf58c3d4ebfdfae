package rules

import (
	"fmt"
	"strings"

	"github.com/pgguard/pgguard/policy"

	pg_query "github.com/pganalyze/pg_query_go/v6"
)

// cascadeDrop is a relation or column that a DROP TYPE, DROP DOMAIN or
// DROP FUNCTION (PROCEDURE, ROUTINE) ... CASCADE drops with the object it
// names, and that object.
type cascadeDrop struct {
	policy.Dropped
	by policy.CascadeObject
}

// cascadeDrops asks the catalog (pg_depend, before the statement runs)
// what a DROP ... CASCADE of a type or a function drops with it: the
// tables whose columns are of the type (or use it), the tables typed by
// it, the views that use it. Tables created in the open transaction are
// left out. Nothing without a catalog (lint: the file's statements do not
// say what depends on the object).
func cascadeDrops(c *policy.Check, n *pg_query.Node) []cascadeDrop {
	objs := policy.CascadeDropsOf(n)
	if len(objs) == 0 || c.Session == nil || c.Session.Catalog == nil {
		return nil
	}
	cc, ok := c.Session.Catalog.(policy.CascadeCatalog)
	if !ok {
		return nil
	}
	var out []cascadeDrop
	for _, o := range objs {
		ds, ok := cc.CascadeDrops(c.Ctx, o.Kind, o.Name.String(), o.Args)
		if !ok {
			continue
		}
		for _, d := range ds {
			if !c.Created(d.Table) {
				out = append(out, cascadeDrop{Dropped: d, by: o})
			}
		}
	}
	return out
}

// isTable: a table, a partitioned table or a foreign table (pg_class.relkind).
func isTable(kind string) bool { return kind == "r" || kind == "p" || kind == "f" }

// cascadeWhat names the object a DROP ... CASCADE names, for messages.
func cascadeWhat(o policy.CascadeObject, n *pg_query.Node) string {
	kind := "type"
	switch n.GetDropStmt().GetRemoveType() {
	case pg_query.ObjectType_OBJECT_DOMAIN:
		kind = "domain"
	case pg_query.ObjectType_OBJECT_FUNCTION:
		kind = "function"
	case pg_query.ObjectType_OBJECT_PROCEDURE:
		kind = "procedure"
	case pg_query.ObjectType_OBJECT_ROUTINE:
		kind = "routine"
	}
	return strings.ToUpper("drop "+kind) + " " + o.Name.String() + o.Args + " CASCADE"
}

// checkCascadeColumns reports the columns of tables that a DROP TYPE or
// FUNCTION ... CASCADE drops (rule drop-column): a column of the type, of
// its array, of a domain over it.
func checkCascadeColumns(c *policy.Check, n *pg_query.Node) {
	for _, d := range cascadeDrops(c, n) {
		if d.Column == "" || !isTable(d.Kind) {
			continue
		}
		col := policy.QuoteIdent(d.Column)
		what := cascadeWhat(d.by, n)
		c.Report(policy.Report{
			Table: d.Table,
			Lock:  policy.LockAccessExclusive,
			Message: fmt.Sprintf("%s drops column %s of %s (it depends on %s), which breaks every running query and ORM model that still reads or writes it, from the moment the migration commits, and deletes its data.",
				what, col, d.Table, d.by.Name),
			Detail: "The server's pg_depend says so before the statement runs: CASCADE drops every column, view, trigger, default and constraint that depends on the object.",
			Hint: fmt.Sprintf("-- deployment 1: remove %[2]s from %[3]s, and deploy it everywhere\n"+
				"-- deployment 2: drop the column in a later migration, saying why it is safe now, then the object without CASCADE:\n"+
				"%[4]s\n"+
				"ALTER TABLE %[1]s DROP COLUMN %[2]s;", d.Table, col, c.CodeOf(), c.Allow("drop-column", d.Column+" unused since <release>")),
		})
	}
}

// checkCascadeTables reports the tables that a DROP TYPE ... CASCADE
// drops whole (rule drop-table): a table typed by a composite type
// (CREATE TABLE t OF type).
func checkCascadeTables(c *policy.Check, n *pg_query.Node) {
	for _, d := range cascadeDrops(c, n) {
		if d.Column != "" || !isTable(d.Kind) {
			continue
		}
		c.Report(policy.Report{
			Table: d.Table,
			Lock:  policy.LockAccessExclusive,
			Message: fmt.Sprintf("%s drops table %s (it depends on %s), which deletes its data for good and breaks every running query and ORM model that still uses it, from the moment the migration commits.",
				cascadeWhat(d.by, n), d.Table, d.by.Name),
			Detail: "The server's pg_depend says so before the statement runs: CASCADE drops every table, column and view that depends on the object.",
			Hint: fmt.Sprintf("-- deployment 1: remove every use of table %[1]s from the code, deploy it everywhere,\n"+
				"-- and keep a backup (pg_dump --table=%[2]s <database>) for as long as you may need the data\n"+
				"-- deployment 2: drop it in a later migration, saying why it is safe now, then the object without CASCADE:\n"+
				"%[3]s\n"+
				"DROP TABLE %[1]s;", d.Table, shellTableArg(d.Table), c.Allow("drop-table", d.Table.Name+" unused since <release>")),
		})
	}
}

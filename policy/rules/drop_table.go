package rules

import (
	"fmt"
	"github.com/pgguard/pgguard/policy"
	"strings"

	pg_query "github.com/pganalyze/pg_query_go/v6"
)

func init() {
	policy.Register(policy.Rule{
		ID:      "drop-table",
		Summary: "DROP TABLE / SCHEMA / DATABASE breaks the code that still uses them and cannot be undone",
		Default: policy.LevelReject,
		Check:   checkDropTable,
		// No Verify: a breaking-change rule, and the verification test
		// observes ledger after the statement, which DROP TABLE ledger
		// removes. The lock is a brief ACCESS EXCLUSIVE (PostgreSQL only
		// unlinks the files at commit).
	})
}

func checkDropTable(c *policy.Check, n *pg_query.Node) {
	checkCascadeTables(c, n)
	switch s := n.GetNode().(type) {
	case *pg_query.Node_DropStmt:
		d := s.DropStmt
		var kind string
		switch d.RemoveType {
		case pg_query.ObjectType_OBJECT_TABLE:
			kind = "table"
		case pg_query.ObjectType_OBJECT_SCHEMA:
			kind = "schema"
		default:
			return
		}
		for _, o := range d.Objects {
			t := droppedName(o)
			if t.Name == "" || (kind == "table" && c.Created(t)) {
				continue
			}
			r := policy.Report{
				// A schema is not a relation: the engine must not look
				// its name up as one (Check.Missing).
				Table:   relationOnly(kind, t),
				Lock:    policy.LockAccessExclusive,
				Message: fmt.Sprintf("Dropping %s %s deletes its data for good and breaks every running query and ORM model that still uses it, from the moment the migration commits.", kind, t),
				Hint: fmt.Sprintf("-- deployment 1: remove every use of %[2]s %[1]s from the code, deploy it everywhere,\n"+
					"-- and keep a backup (pg_dump --%[2]s=%[3]s <database>) for as long as you may need the data\n"+
					"-- deployment 2: drop it in a later migration, saying why it is safe now:\n"+
					"%[4]s\n"+
					"DROP %[5]s %[6]s%[1]s%[7]s;", t, kind, shellTableArg(t), c.Allow("drop-table", t.Name+" unused since <release>"), strings.ToUpper(kind), ifExists(d.MissingOk), cascade(d.Behavior)),
			}
			if d.Behavior == pg_query.DropBehavior_DROP_CASCADE {
				r.Detail = "CASCADE also drops every view, foreign key and other object that depends on it."
			}
			c.Report(r)
		}
	case *pg_query.Node_DropdbStmt:
		db := policy.QuoteIdent(s.DropdbStmt.Dbname)
		c.Report(policy.Report{
			Message: fmt.Sprintf("Dropping database %s deletes all of its data for good and breaks every application that connects to it.", db),
			Hint: "-- stop every application that uses " + db + " and keep a backup (pg_dump) first; then drop it\n" +
				"-- from an administrator's session, not from a migration:\n" +
				policy.AllowAnnotation(policy.ToolUnknown, "drop-table", "database retired on <date>") + "\n" +
				"DROP DATABASE " + ifExists(s.DropdbStmt.MissingOk) + db + ";",
		})
	}
}

// droppedName is the name in a DROP statement's object list: a list of
// String nodes for relations, one String for a schema.
func droppedName(o *pg_query.Node) policy.Table {
	if s := o.GetString_(); s != nil {
		return policy.Table{Name: s.Sval}
	}
	l := o.GetList()
	if l == nil {
		return policy.Table{}
	}
	var parts []string
	for _, it := range l.Items {
		parts = append(parts, it.GetString_().GetSval())
	}
	switch len(parts) {
	case 1:
		return policy.Table{Name: parts[0]}
	case 2:
		return policy.Table{Schema: parts[0], Name: parts[1]}
	case 3:
		return policy.Table{Schema: parts[1], Name: parts[2]}
	}
	return policy.Table{}
}

func relationOnly(kind string, t policy.Table) policy.Table {
	if kind != "table" {
		return policy.Table{}
	}
	return t
}

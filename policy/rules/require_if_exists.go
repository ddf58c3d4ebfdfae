package rules

import (
	"fmt"
	"github.com/pgguard/pgguard/policy"

	pg_query "github.com/pganalyze/pg_query_go/v6"
)

func init() {
	policy.Register(policy.Rule{
		ID:       "require-if-exists",
		Advisory: true,
		Summary:  "DDL outside a transaction without IF [NOT] EXISTS cannot be re-run after a partial failure",
		Default:  policy.LevelOff,
		Check:    checkRequireIfExists,
		// No Verify: advisory, about re-running migrations, not a lock.
	})
}

func checkRequireIfExists(c *policy.Check, n *pg_query.Node) {
	if c.InTransactionBlock() {
		return // a failure rolls the whole transaction back: re-running is safe
	}
	cp := policy.CloneNode(n)
	var what string
	switch s := cp.GetNode().(type) {
	case *pg_query.Node_CreateStmt:
		if !s.CreateStmt.IfNotExists {
			what, s.CreateStmt.IfNotExists = "CREATE TABLE without IF NOT EXISTS", true
		}
	case *pg_query.Node_IndexStmt:
		if !s.IndexStmt.IfNotExists && s.IndexStmt.Idxname != "" {
			what, s.IndexStmt.IfNotExists = "CREATE INDEX without IF NOT EXISTS", true
		}
	case *pg_query.Node_CreateSchemaStmt:
		if !s.CreateSchemaStmt.IfNotExists {
			what, s.CreateSchemaStmt.IfNotExists = "CREATE SCHEMA without IF NOT EXISTS", true
		}
	case *pg_query.Node_CreateSeqStmt:
		if !s.CreateSeqStmt.IfNotExists {
			what, s.CreateSeqStmt.IfNotExists = "CREATE SEQUENCE without IF NOT EXISTS", true
		}
	case *pg_query.Node_CreateExtensionStmt:
		if !s.CreateExtensionStmt.IfNotExists {
			what, s.CreateExtensionStmt.IfNotExists = "CREATE EXTENSION without IF NOT EXISTS", true
		}
	case *pg_query.Node_DropStmt:
		if !s.DropStmt.MissingOk {
			what, s.DropStmt.MissingOk = "DROP without IF EXISTS", true
		}
	case *pg_query.Node_AlterTableStmt:
		for _, cn := range s.AlterTableStmt.Cmds {
			cmd := cn.GetAlterTableCmd()
			if cmd == nil || cmd.MissingOk {
				continue
			}
			switch cmd.Subtype {
			case pg_query.AlterTableType_AT_AddColumn:
				what, cmd.MissingOk = "ADD COLUMN without IF NOT EXISTS", true
			case pg_query.AlterTableType_AT_DropColumn:
				what, cmd.MissingOk = "DROP COLUMN without IF EXISTS", true
			case pg_query.AlterTableType_AT_DropConstraint:
				what, cmd.MissingOk = "DROP CONSTRAINT without IF EXISTS", true
			}
		}
	}
	if what == "" {
		return
	}
	hint := policy.Deparse(cp)
	if hint != "" {
		hint += ";"
	}
	c.Report(policy.Report{
		Message: fmt.Sprintf("%s fails when the migration runs again: outside a transaction block the statements before a failure stay done, so a re-run stops at the first one.", what),
		Hint:    advisoryHint("-- the same, safe to run again:", hint),
	})
}

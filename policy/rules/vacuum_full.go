package rules

import (
	"fmt"
	"github.com/pgguard/pgguard/policy"
	"strings"

	pg_query "github.com/pganalyze/pg_query_go/v6"
)

func init() {
	policy.Register(policy.Rule{
		ID:            "vacuum-full",
		Summary:       "VACUUM FULL rewrites the table under ACCESS EXCLUSIVE",
		Default:       policy.LevelReject,
		SizeDependent: true,
		Check:         checkVacuumFull,
		Verify: &policy.Verification{
			// VACUUM cannot run inside a transaction block, where the test
			// observes locks: PostgreSQL refuses it there. The lock and the
			// rewrite (ACCESS EXCLUSIVE, new relfilenode) are those of
			// CLUSTER, which shares its code (cluster_rel) and is verified
			// by the cluster rule. The recipe, a plain VACUUM, is run
			// outside a transaction next to a writer.
			Statement: "VACUUM FULL ledger",
			Error:     "25001", // active_sql_transaction
		},
	})
}

func checkVacuumFull(c *policy.Check, n *pg_query.Node) {
	s := n.GetVacuumStmt()
	if s == nil || !s.IsVacuumcmd || !defElemTrue(s.Options, "full") {
		return
	}
	if len(s.Rels) == 0 {
		c.Report(policy.Report{
			Lock:    policy.LockAccessExclusive,
			Message: "VACUUM FULL without a table name rewrites every table of the database in turn, each under an ACCESS EXCLUSIVE lock that blocks all reads and writes of that table until its copy is written.",
			Hint:    vacuumFullHint(policy.Table{}),
		})
		return
	}
	for _, rel := range s.Rels {
		t := policy.TableOf(rel.GetVacuumRelation().GetRelation())
		if t.Name == "" {
			continue
		}
		c.Report(policy.Report{
			Table:   t,
			Lock:    policy.LockAccessExclusive,
			Message: fmt.Sprintf("VACUUM FULL %s writes a new copy of the whole table and its indexes under an ACCESS EXCLUSIVE lock that blocks all reads and writes until it is done.", t),
			Hint:    vacuumFullHint(t),
		})
	}
}

func vacuumFullHint(t policy.Table) string {
	repack, target := "--no-order --table="+shellTableArg(t)+" <database>", " "+t.String()
	if t.Name == "" {
		repack, target = "--no-order <database>", ""
	}
	return "-- to give the space back to the operating system online, use pg_repack from a shell\n" +
		"-- (it holds ACCESS EXCLUSIVE only for a moment at the start and the end):\n" +
		"--   pg_repack " + repack + "\n" +
		"-- to make the space of dead rows reusable, a plain VACUUM is enough: it holds SHARE UPDATE EXCLUSIVE,\n" +
		"-- which lets reads and writes go on (and, like VACUUM FULL, cannot run inside a transaction block):\n" +
		"VACUUM (ANALYZE)" + target + ";"
}

// shellTableArg spells a table for a pg_repack --table argument, quoted
// for a POSIX shell when it needs SQL quotes.
func shellTableArg(t policy.Table) string {
	s := t.String()
	if strings.ContainsAny(s, `"<> `) {
		return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
	}
	return s
}

// defElemTrue reports whether the options hold name as a boolean option
// that is on: FULL, (FULL), (FULL true), (FULL on), (FULL 1).
func defElemTrue(opts []*pg_query.Node, name string) bool {
	on := false
	for _, o := range opts {
		d := o.GetDefElem()
		if d == nil || d.Defname != name {
			continue
		}
		on = true
		if d.Arg == nil {
			continue
		}
		switch v := d.Arg.GetNode().(type) {
		case *pg_query.Node_String_:
			on = !(strings.EqualFold(v.String_.Sval, "false") || strings.EqualFold(v.String_.Sval, "off"))
		case *pg_query.Node_Boolean:
			on = v.Boolean.Boolval
		case *pg_query.Node_Integer:
			on = v.Integer.Ival != 0
		case *pg_query.Node_AConst:
			switch {
			case v.AConst.GetBoolval() != nil:
				on = v.AConst.GetBoolval().Boolval
			case v.AConst.GetIval() != nil:
				on = v.AConst.GetIval().Ival != 0
			case v.AConst.GetSval() != nil:
				sv := v.AConst.GetSval().Sval
				on = !(strings.EqualFold(sv, "false") || strings.EqualFold(sv, "off"))
			}
		}
	}
	return on
}

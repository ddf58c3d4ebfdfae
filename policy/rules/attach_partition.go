package rules

import (
	"fmt"
	"github.com/pgguard/pgguard/policy"
	"strings"

	pg_query "github.com/pganalyze/pg_query_go/v6"
)

func init() {
	policy.Register(policy.Rule{
		ID:            "attach-partition",
		Summary:       "ATTACH PARTITION without a matching validated CHECK scans the partition under ACCESS EXCLUSIVE",
		Default:       policy.LevelReject,
		SizeDependent: true,
		Check:         checkAttachPartition,
		Verify: &policy.Verification{
			Setup:     []string{"CREATE TABLE ledger_by_month (LIKE ledger) PARTITION BY RANGE (created_at)"},
			Statement: "ALTER TABLE ledger_by_month ATTACH PARTITION ledger FOR VALUES FROM ('2024-01-01') TO ('2025-01-01')",
			Lock:      policy.LockAccessExclusive,
			Work:      policy.WorkScan,
		},
	})
}

func checkAttachPartition(c *policy.Check, n *pg_query.Node) {
	parent, cmds := policy.AlterTableCmds(n)
	pc, _ := c.Session.Catalog.(policy.PartitionCatalog)
	for _, cmd := range cmds {
		p := cmd.GetDef().GetPartitionCmd()
		if cmd.Subtype != pg_query.AlterTableType_AT_AttachPartition || p == nil || p.Name == nil {
			continue
		}
		part := policy.TableOf(p.Name)
		var key []string
		if pc != nil {
			strategy, cols, ok := pc.PartitionKey(c.Ctx, parent.String())
			if ok && strategy == boundStrategy(p.Bound) {
				key = cols
			}
			if ok && len(cols) > 0 && !contains(cols, "") {
				if has, ok := pc.HasValidatedCheckOn(c.Ctx, part.String(), cols); ok && has {
					continue // PostgreSQL skips the scan when the CHECK implies the bound
				}
			}
		}
		detail := fmt.Sprintf("If %s has a DEFAULT partition, PostgreSQL also scans it under ACCESS EXCLUSIVE for rows that belong to the new partition.", parent)
		if c.Version < 12 {
			detail = policy.JoinSentences(fmt.Sprintf("Before PostgreSQL 12, ATTACH PARTITION also takes ACCESS EXCLUSIVE on %s.", parent), detail)
		}
		c.Report(policy.Report{
			Table:   part,
			Lock:    policy.LockAccessExclusive,
			Message: fmt.Sprintf("Attaching %s as a partition of %s scans all of %s under an ACCESS EXCLUSIVE lock, blocking all reads and writes to it, to prove every row fits the partition bound.", part, parent, part),
			Detail:  detail,
			Hint:    attachPartitionRecipe(parent, part, p.Bound, key, c.SQL()),
		})
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func boundStrategy(b *pg_query.PartitionBoundSpec) string {
	switch {
	case b == nil:
		return ""
	case b.IsDefault:
		return "default"
	case b.Strategy == "r":
		return "range"
	case b.Strategy == "l":
		return "list"
	case b.Strategy == "h":
		return "hash"
	}
	return ""
}

// boundCheck builds a CHECK expression equivalent to a single-column range
// or list bound; "" when pgguard cannot (hash, default, several columns,
// unknown key).
func boundCheck(b *pg_query.PartitionBoundSpec, key []string) string {
	if b == nil || len(key) != 1 || key[0] == "" {
		return ""
	}
	col := policy.QuoteIdent(key[0])
	isBound := func(n *pg_query.Node) bool { // MINVALUE / MAXVALUE
		cr := n.GetColumnRef()
		return cr != nil && len(cr.Fields) == 1 && cr.Fields[0].GetString_() != nil
	}
	switch boundStrategy(b) {
	case "range":
		if len(b.Lowerdatums) != 1 || len(b.Upperdatums) != 1 {
			return ""
		}
		parts := []string{col + " IS NOT NULL"}
		if lo := b.Lowerdatums[0]; !isBound(lo) {
			parts = append(parts, col+" >= "+policy.DeparseExpr(lo))
		}
		if hi := b.Upperdatums[0]; !isBound(hi) {
			parts = append(parts, col+" < "+policy.DeparseExpr(hi))
		}
		return strings.Join(parts, " AND ")
	case "list":
		var vals []string
		null := false
		for _, d := range b.Listdatums {
			if isNullConst(d) {
				null = true
				continue
			}
			vals = append(vals, policy.DeparseExpr(d))
		}
		in := col + " IN (" + strings.Join(vals, ", ") + ")"
		switch {
		case null && len(vals) == 0:
			return col + " IS NULL"
		case null:
			return col + " IS NULL OR " + in
		}
		return col + " IS NOT NULL AND " + in
	}
	return ""
}

// attachPartitionRecipe: a CHECK constraint matching the bound, added NOT
// VALID and validated, lets ATTACH PARTITION skip its scan.
func attachPartitionRecipe(parent, part policy.Table, bound *pg_query.PartitionBoundSpec, key []string, attachSQL string) string {
	name := policy.QuoteIdent(policy.ConstraintName(part, "partition", "bound"))
	check := boundCheck(bound, key)
	var b strings.Builder
	if check == "" {
		fmt.Fprintf(&b, "-- a CHECK constraint on %s that matches the partition bound lets ATTACH skip its scan; write it over the partition key of %s,\n", part, parent)
		b.WriteString("-- e.g. for RANGE (key) FOR VALUES FROM (a) TO (b): CHECK (key IS NOT NULL AND key >= a AND key < b)\n")
		check = "<partition key within the bound>"
	} else {
		b.WriteString("-- a CHECK constraint that matches the partition bound lets ATTACH skip its scan; add it without checking existing rows (brief lock):\n")
	}
	b.WriteString(policy.InOwnTransaction(fmt.Sprintf("ALTER TABLE %s ADD CONSTRAINT %s CHECK (%s) NOT VALID;", part, name, check)) + "\n")
	b.WriteString(policy.ValidateSeparately)
	b.WriteString(policy.InOwnTransaction(fmt.Sprintf("ALTER TABLE %s VALIDATE CONSTRAINT %s;", part, name)) + "\n")
	// Once VALIDATE has committed: in the same transaction (one migration
	// file of golang-migrate or Prisma) pgguard, judging each statement
	// before any runs, cannot see the constraint validated yet.
	b.WriteString("-- then, " + policy.StepSeparate + ", once VALIDATE has committed (no scan now: PostgreSQL sees that the validated constraint implies the bound):\n")
	b.WriteString(strings.TrimRight(strings.TrimSpace(attachSQL), ";") + ";\n")
	b.WriteString("-- the partition constraint now does the CHECK's job:\n")
	fmt.Fprintf(&b, "ALTER TABLE %s DROP CONSTRAINT %s;", part, name)
	return b.String()
}

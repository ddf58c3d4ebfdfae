package rules

import (
	"fmt"
	"github.com/pgguard/pgguard/policy"
	"strings"

	pg_query "github.com/pganalyze/pg_query_go/v6"
)

func init() {
	policy.Register(policy.Rule{
		ID:            "validate-in-same-transaction",
		Summary:       "VALIDATE CONSTRAINT in the transaction that added it NOT VALID scans under the ADD's lock",
		Default:       policy.LevelReject,
		SizeDependent: true,
		Check:         checkValidateInSameTransaction,
		Verify: &policy.Verification{
			// The verification sees one statement at a time: the ADD and the
			// VALIDATE in one ALTER TABLE are the same mistake.
			Statement: "ALTER TABLE ledger ADD CONSTRAINT ledger_amount_nonnegative CHECK (amount >= 0) NOT VALID, VALIDATE CONSTRAINT ledger_amount_nonnegative",
			Lock:      policy.LockAccessExclusive,
			Work:      policy.WorkScan,
		},
	})
}

func checkValidateInSameTransaction(c *policy.Check, n *pg_query.Node) {
	t, cmds := policy.AlterTableCmds(n)
	same := policy.NotValidAdds(n)
	for _, cmd := range cmds {
		if cmd.Subtype != pg_query.AlterTableType_AT_ValidateConstraint {
			continue
		}
		name := cmd.Name
		lock, inStatement := policy.FindNotValid(same, t, name)
		where := "in the same statement"
		if !inStatement {
			if c.Session.NotValidConstraints == nil || !c.InTransactionBlock() {
				continue
			}
			var ok bool
			if lock, ok = c.Session.NotValidConstraints(t, name); !ok {
				continue
			}
			where = "in the same transaction"
		}
		if lock == "" {
			lock = policy.LockAccessExclusive
		}
		var hint strings.Builder
		if inStatement {
			var rest []*pg_query.AlterTableCmd
			for _, other := range cmds {
				if other.Subtype != pg_query.AlterTableType_AT_ValidateConstraint {
					rest = append(rest, other)
				}
			}
			if len(rest) > 0 {
				hint.WriteString("-- add the constraint NOT VALID on its own (a brief lock), and COMMIT:\n")
				hint.WriteString(policy.InOwnTransaction(policy.Deparse(policy.AlterTable(t, rest...))+";") + "\n")
			}
		} else {
			hint.WriteString("-- COMMIT the transaction that added the constraint NOT VALID first, so that its lock is released;\n")
		}
		hint.WriteString(policy.ValidateSeparately)
		hint.WriteString(policy.InOwnTransaction(fmt.Sprintf("ALTER TABLE %s VALIDATE CONSTRAINT %s;", t, policy.QuoteIdent(name))))
		c.Report(policy.Report{
			Table: t,
			Lock:  lock,
			Message: fmt.Sprintf("VALIDATE CONSTRAINT %s runs %s that added it NOT VALID, so the %s lock the ADD took on %s is held through the whole validation scan, blocking %s: NOT VALID then gains nothing.",
				policy.QuoteIdent(name), where, lock, t, blockedBy(lock)),
			Hint: hint.String(),
		})
	}
}

// blockedBy says what a lock held on a table blocks.
func blockedBy(lock string) string {
	if lock == policy.LockAccessExclusive {
		return "all reads and writes"
	}
	if policy.BlocksWrites(lock) {
		return "all writes"
	}
	return "other schema changes"
}

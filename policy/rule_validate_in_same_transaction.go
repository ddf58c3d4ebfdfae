package policy

import (
	"fmt"
	"github.com/pgguard/pgguard/policy/sqltext"
	"strings"

	pg_query "github.com/pganalyze/pg_query_go/v6"
)

func init() {
	Register(Rule{
		ID:            "validate-in-same-transaction",
		Summary:       "VALIDATE CONSTRAINT in the transaction that added it NOT VALID scans under the ADD's lock",
		Default:       LevelReject,
		SizeDependent: true,
		Check:         checkValidateInSameTransaction,
		Verify: &Verification{
			// The verification sees one statement at a time: the ADD and the
			// VALIDATE in one ALTER TABLE are the same mistake.
			Statement: "ALTER TABLE ledger ADD CONSTRAINT ledger_amount_nonnegative CHECK (amount >= 0) NOT VALID, VALIDATE CONSTRAINT ledger_amount_nonnegative",
			Lock:      LockAccessExclusive,
			Work:      WorkScan,
		},
	})
}

// NotValidConstraint is a constraint a statement adds NOT VALID, and the
// lock that statement takes on its table.
type NotValidConstraint struct {
	Table Table
	Name  string
	Lock  string
}

// notValidAdds returns the CHECK and FOREIGN KEY constraints an ALTER
// TABLE adds NOT VALID (unnamed ones under the name PostgreSQL gives them,
// as far as pgguard can tell).
func notValidAdds(n *pg_query.Node) []NotValidConstraint {
	t, cmds := AlterTableCmds(n)
	var out []NotValidConstraint
	lock := ""
	for _, cmd := range cmds {
		lock = strongerLock(lock, alterTableLock(cmd))
	}
	for _, cmd := range cmds {
		k := cmd.GetDef().GetConstraint()
		if cmd.Subtype != pg_query.AlterTableType_AT_AddConstraint || k == nil || !k.SkipValidation {
			continue
		}
		out = append(out, NotValidConstraint{Table: t, Name: constraintName(t, k, ""), Lock: lock})
	}
	return out
}

// findNotValid looks a constraint up in list; an unqualified table name on
// either side matches any schema.
func findNotValid(list []NotValidConstraint, t Table, name string) (string, bool) {
	for _, c := range list {
		if c.Name == name && TableIn([]Table{c.Table}, t.Schema, t.Name) {
			return c.Lock, true
		}
	}
	return "", false
}

// endsTransaction reports whether a statement ends the transaction block
// (COMMIT, END, ROLLBACK or ABORT, but not ROLLBACK TO SAVEPOINT).
func endsTransaction(text string) bool {
	for _, kw := range []string{"commit", "end", "abort"} {
		if sqltext.FirstWordIs(text, kw) {
			return true
		}
	}
	return sqltext.FirstWordIs(text, "rollback") && !sqltext.ContainsFold(text, " to ")
}

func checkValidateInSameTransaction(c *Check, n *pg_query.Node) {
	t, cmds := AlterTableCmds(n)
	same := notValidAdds(n)
	for _, cmd := range cmds {
		if cmd.Subtype != pg_query.AlterTableType_AT_ValidateConstraint {
			continue
		}
		name := cmd.Name
		lock, inStatement := findNotValid(same, t, name)
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
			lock = LockAccessExclusive
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
				hint.WriteString(inTransaction(Deparse(alterTable(t, rest...))+";") + "\n")
			}
		} else {
			hint.WriteString("-- COMMIT the transaction that added the constraint NOT VALID first, so that its lock is released;\n")
		}
		hint.WriteString(validateSeparately)
		hint.WriteString(inTransaction(fmt.Sprintf("ALTER TABLE %s VALIDATE CONSTRAINT %s;", t, QuoteIdent(name))))
		c.Report(Report{
			Table: t,
			Lock:  lock,
			Message: fmt.Sprintf("VALIDATE CONSTRAINT %s runs %s that added it NOT VALID, so the %s lock the ADD took on %s is held through the whole validation scan, blocking %s: NOT VALID then gains nothing.",
				QuoteIdent(name), where, lock, t, blockedBy(lock)),
			Hint: hint.String(),
		})
	}
}

// blockedBy says what a lock held on a table blocks.
func blockedBy(lock string) string {
	if lock == LockAccessExclusive {
		return "all reads and writes"
	}
	if BlocksWrites(lock) {
		return "all writes"
	}
	return "other schema changes"
}

package rules

import (
	"fmt"
	"github.com/pgguard/pgguard/policy"
	"strings"

	pg_query "github.com/pganalyze/pg_query_go/v6"
)

func init() {
	policy.Register(policy.Rule{
		ID:            "add-column-serial-identity-generated",
		Summary:       "ADD COLUMN serial/bigserial, GENERATED ... AS IDENTITY or GENERATED ... STORED rewrites the table under ACCESS EXCLUSIVE",
		Default:       policy.LevelReject,
		SizeDependent: true,
		Check:         checkAddColumnSerialIdentityGenerated,
		Verify: &policy.Verification{
			// A stored generated column: its recipe needs no NOT NULL step,
			// so the test can run it with a single backfill batch.
			Statement: "ALTER TABLE ledger ADD COLUMN amount_cents bigint GENERATED ALWAYS AS ((amount * 100)::bigint) STORED",
			Lock:      policy.LockAccessExclusive,
			Work:      policy.WorkRewrite,
		},
	})
}

// serialTypes maps the serial pseudo-types to the integer type of the
// column they create.
var serialTypes = map[string]string{
	"smallserial": "int2", "serial2": "int2",
	"serial": "int4", "serial4": "int4",
	"bigserial": "int8", "serial8": "int8",
}

func serialType(col *pg_query.ColumnDef) (serial, base string) {
	tn := col.GetTypeName()
	if tn == nil || len(tn.Names) != 1 || len(tn.ArrayBounds) > 0 {
		return "", ""
	}
	name := strings.ToLower(tn.Names[0].GetString_().GetSval())
	return name, serialTypes[name]
}

func checkAddColumnSerialIdentityGenerated(c *policy.Check, n *pg_query.Node) {
	t, cmds := policy.AlterTableCmds(n)
	for _, cmd := range cmds {
		col := cmd.GetDef().GetColumnDef()
		if cmd.Subtype != pg_query.AlterTableType_AT_AddColumn || col == nil {
			continue
		}
		serial, base := serialType(col)
		identity := policy.ColumnConstraints(col, pg_query.ConstrType_CONSTR_IDENTITY)
		generated := policy.ColumnConstraints(col, pg_query.ConstrType_CONSTR_GENERATED)
		var what, hint string
		switch {
		case base != "":
			what = serial
			hint = sequenceColumnRecipe(t, col, base, c.Version)
		case len(identity) > 0:
			what = "an identity column"
			hint = sequenceColumnRecipe(t, col, "", c.Version)
		case len(generated) > 0 && generated[0].RawExpr != nil:
			what = "a stored generated column"
			hint = generatedColumnRecipe(t, col, generated[0].RawExpr, c.Version)
		default:
			continue
		}
		c.Report(policy.Report{
			Table:   t,
			Lock:    policy.LockAccessExclusive,
			Message: fmt.Sprintf("Adding column %s to %s as %s rewrites the whole table under an ACCESS EXCLUSIVE lock, blocking all reads and writes until every row has its value.", policy.QuoteIdent(col.Colname), t, what),
			Detail:  "PostgreSQL computes the new column's value for every existing row and writes a new copy of the table.",
			Hint:    hint,
		})
	}
}

// sequenceColumnRecipe: a plain column whose default comes from a
// sequence, filled in batches, then NOT NULL without a long lock.
func sequenceColumnRecipe(t policy.Table, col *pg_query.ColumnDef, base string, version int) string {
	bare := policy.BareColumn(col, pg_query.ConstrType_CONSTR_IDENTITY, pg_query.ConstrType_CONSTR_DEFAULT,
		pg_query.ConstrType_CONSTR_NOTNULL, pg_query.ConstrType_CONSTR_PRIMARY, pg_query.ConstrType_CONSTR_UNIQUE)
	if base != "" {
		bare.TypeName = &pg_query.TypeName{Names: []*pg_query.Node{pg_query.MakeStrNode("pg_catalog"), pg_query.MakeStrNode(base)}, Typemod: -1}
	}
	seq := policy.InSchema(t, policy.ConstraintName(t, col.Colname, "seq"))
	colName := policy.QuoteIdent(col.Colname)
	next := fmt.Sprintf("nextval(%s)", policy.QuoteLiteral(seq.String()))
	var b strings.Builder
	b.WriteString("-- add a plain column and a sequence of your own (no rewrite: a default set afterwards applies to new rows only):\n")
	fmt.Fprintf(&b, "CREATE SEQUENCE %s;\n", seq)
	b.WriteString(policy.AddColumnSQL(t, bare) + ";\n")
	fmt.Fprintf(&b, "ALTER TABLE %s ALTER COLUMN %s SET DEFAULT %s;\n", t, colName, next)
	fmt.Fprintf(&b, "ALTER SEQUENCE %s OWNED BY %s.%s;\n", seq, t, colName)
	b.WriteString(policy.StepBackfill + "\n")
	b.WriteString(policy.BatchUpdateSQL(t, col.Colname, next))
	b.WriteString("\n-- then add NOT NULL without a long lock:\n")
	b.WriteString(notNullRecipe(t, col.Colname, version))
	if len(policy.ColumnConstraints(col, pg_query.ConstrType_CONSTR_PRIMARY, pg_query.ConstrType_CONSTR_UNIQUE)) > 0 {
		fmt.Fprintf(&b, "\n-- then the PRIMARY KEY or UNIQUE constraint on %s: CREATE UNIQUE INDEX CONCURRENTLY, then ADD CONSTRAINT ... USING INDEX (see the add-primary-key rule).", colName)
	}
	return b.String()
}

// generatedColumnRecipe: a plain column kept up to date by a trigger and
// backfilled in batches.
func generatedColumnRecipe(t policy.Table, col *pg_query.ColumnDef, expr *pg_query.Node, version int) string {
	bare := policy.BareColumn(col, pg_query.ConstrType_CONSTR_GENERATED, pg_query.ConstrType_CONSTR_NOTNULL)
	exprSQL := policy.DeparseExpr(expr)
	var b strings.Builder
	b.WriteString("-- add a plain column (no rewrite):\n")
	b.WriteString(policy.AddColumnSQL(t, bare) + ";\n")
	b.WriteString("-- compute it for new and updated rows:\n")
	b.WriteString(policy.FillTriggerSQL(t, col.Colname, policy.DeparseExpr(policy.NewRowExpr(expr)), "fill", version) + "\n")
	b.WriteString(policy.StepBackfill + "\n")
	b.WriteString(policy.BatchUpdateWhereSQL(t, col.Colname, exprSQL, fmt.Sprintf("%s IS DISTINCT FROM (%s)", policy.QuoteIdent(col.Colname), exprSQL)))
	if col.IsNotNull || len(policy.ColumnConstraints(col, pg_query.ConstrType_CONSTR_NOTNULL)) > 0 {
		b.WriteString("\n-- then add NOT NULL without a long lock:\n")
		b.WriteString(notNullRecipe(t, col.Colname, version))
	}
	return b.String()
}

package rules

import (
	"fmt"
	"github.com/pgguard/pgguard/policy"
	"strings"

	pg_query "github.com/pganalyze/pg_query_go/v6"
	"github.com/pgguard/pgguard/policy/sqltext"
	"google.golang.org/protobuf/proto"
)

func init() {
	policy.Register(policy.Rule{
		ID:            "add-column-volatile-default",
		Summary:       "ADD COLUMN with a volatile default (or any default before PostgreSQL 11) rewrites the table",
		Default:       policy.LevelReject,
		SizeDependent: true,
		Check:         checkAddColumnVolatileDefault,
		Verify: &policy.Verification{
			Statement: "ALTER TABLE ledger ADD COLUMN token uuid DEFAULT gen_random_uuid()",
			Lock:      policy.LockAccessExclusive,
			Work:      policy.WorkRewrite,
		},
	})
}

// volatileFunctions are built-in functions whose default value differs per
// row, so that PostgreSQL must write it into every row.
var volatileFunctions = map[string]bool{
	"clock_timestamp": true, "random": true, "random_normal": true, "gen_random_uuid": true,
	"uuid_generate_v1": true, "uuid_generate_v1mc": true, "uuid_generate_v4": true, "uuidv4": true,
	"uuidv7": true, "nextval": true, "timeofday": true, "txid_current": true, "setseed": true,
	"pg_current_xact_id": true, "gen_random_bytes": true,
}

// stableFunctions are common built-ins that are not volatile: evaluated once
// for ADD COLUMN, whose value PostgreSQL 11+ stores in the catalog.
var stableFunctions = map[string]bool{
	"now": true, "transaction_timestamp": true, "statement_timestamp": true, "current_date": true,
	"lower": true, "upper": true, "coalesce": true, "concat": true, "to_char": true, "to_timestamp": true,
	"make_interval": true, "date_trunc": true, "jsonb_build_object": true, "json_build_object": true,
	"jsonb_build_array": true, "array_fill": true, "length": true, "abs": true, "round": true,
}

func checkAddColumnVolatileDefault(c *policy.Check, n *pg_query.Node) {
	t, cmds := policy.AlterTableCmds(n)
	for _, cmd := range cmds {
		col := cmd.GetDef().GetColumnDef()
		if cmd.Subtype != pg_query.AlterTableType_AT_AddColumn || col == nil {
			continue
		}
		def := columnDefault(col)
		if why := domainRewrite(c, col, def); why != "" {
			typ := typeSQL(col.TypeName)
			c.Report(policy.Report{
				Table:   t,
				Lock:    policy.LockAccessExclusive,
				Message: fmt.Sprintf("Adding column %s of domain %s to %s rewrites the whole table under an ACCESS EXCLUSIVE lock, blocking all reads and writes until every row is rewritten. Fix: add the column with the domain's base type, backfill it in batches outside any transaction block, and check its values with a CHECK constraint added NOT VALID and validated in its own transaction.", policy.QuoteIdent(col.Colname), typ, t),
				Detail:  policy.Capitalize(why) + ".",
				Hint: fmt.Sprintf("-- a column of the domain's base type needs no rewrite:\nALTER TABLE %s ADD COLUMN %s <base type of %s>;\n", t, policy.QuoteIdent(col.Colname), typ) +
					fmt.Sprintf("-- the domain's default for new rows, then existing rows in batches:\nALTER TABLE %s ALTER COLUMN %s SET DEFAULT <the default>;\n", t, policy.QuoteIdent(col.Colname)) +
					policy.StepBackfill + "\n" +
					fmt.Sprintf("-- the domain's checks as a table constraint, validated without a long lock (in its own transaction):\nALTER TABLE %s ADD CONSTRAINT %s CHECK (<the domain's condition on %s>) NOT VALID;\n", t, policy.QuoteIdent(policy.ConstraintName(t, col.Colname, "check")), policy.QuoteIdent(col.Colname)) +
					fmt.Sprintf("ALTER TABLE %s VALIDATE CONSTRAINT %s;", t, policy.QuoteIdent(policy.ConstraintName(t, col.Colname, "check"))),
			})
			continue
		}
		if def == nil || isNullConst(def) {
			continue
		}
		var why string
		if c.Version < 11 {
			why = fmt.Sprintf("before PostgreSQL 11 any default is written into every row, and this server is version %d", c.Version)
		} else if fn := volatileCall(c, def); fn != "" {
			why = fmt.Sprintf("the default calls %s, which is volatile (or not known to be stable), so PostgreSQL computes it for each row and writes it into every row", fn)
		} else {
			continue
		}
		defSQL := policy.DeparseExpr(def)
		c.Report(policy.Report{
			Table:   t,
			Lock:    policy.LockAccessExclusive,
			Message: fmt.Sprintf("Adding column %s to %s with DEFAULT %s rewrites the whole table under an ACCESS EXCLUSIVE lock, blocking all reads and writes until every row is rewritten.", policy.QuoteIdent(col.Colname), t, defSQL),
			Detail:  policy.Capitalize(why) + ".",
			Hint:    addColumnRecipe(t, col, defSQL, c.Version),
		})
	}
}

// domainRewrite explains why adding a column of a domain type rewrites
// the table (the catalog says the domain is constrained, or its default,
// used when the column gives none, is volatile), or returns "". Arrays of
// a domain are not checked by PostgreSQL when added, and built-in types
// are no domains: neither costs a question.
func domainRewrite(c *policy.Check, col *pg_query.ColumnDef, def *pg_query.Node) string {
	tn := col.TypeName
	if tn == nil || len(tn.ArrayBounds) > 0 || builtinType(tn) {
		return ""
	}
	typ := typeSQL(tn)
	domain, constrained, ddef, _, ok := c.Domain(typ)
	switch {
	case !ok || !domain:
		return ""
	case constrained:
		return fmt.Sprintf("%s is a domain with a CHECK or NOT NULL constraint, so PostgreSQL checks the new column's value in every row by rewriting the table", typ)
	case def == nil && ddef != "":
		if res, err := sqltext.PgParse("SELECT " + ddef); err == nil && len(res.Stmts) == 1 {
			if fn := volatileCall(c, res.Stmts[0].Stmt); fn != "" {
				return fmt.Sprintf("the default of domain %s, %s, calls %s, which is volatile (or not known to be stable), so PostgreSQL computes it for each row and writes it into every row", typ, ddef, fn)
			}
		}
	}
	return ""
}

// columnDefault returns a column definition's DEFAULT expression.
func columnDefault(col *pg_query.ColumnDef) *pg_query.Node {
	if col.RawDefault != nil {
		return col.RawDefault
	}
	for _, cn := range col.Constraints {
		if k := cn.GetConstraint(); k != nil && k.Contype == pg_query.ConstrType_CONSTR_DEFAULT {
			return k.RawExpr
		}
	}
	return nil
}

func isNullConst(n *pg_query.Node) bool {
	if tc := n.GetTypeCast(); tc != nil {
		n = tc.Arg
	}
	c := n.GetAConst()
	return c != nil && c.Isnull
}

// volatileCall returns the first function in expr that is (or may be)
// volatile, or "". Unknown functions count as volatile unless the catalog
// says otherwise.
func volatileCall(c *policy.Check, expr *pg_query.Node) string {
	var found string
	policy.Walk(expr, func(n *pg_query.Node) bool {
		fc := n.GetFuncCall()
		if fc == nil || found != "" {
			return found == ""
		}
		name := policy.NameList(fc.Funcname)
		base := strings.TrimPrefix(name, "pg_catalog.")
		switch {
		case volatileFunctions[base]:
			found = name + "()"
		case stableFunctions[base]:
		default:
			if v := c.FunctionVolatility(name); v == policy.VolatilityUnknown || v == policy.VolatilityVolatile {
				found = name + "()"
			}
		}
		return true
	})
	return found
}

// addColumnRecipe: add the column without a default, set the default for
// new rows, backfill old rows in batches.
func addColumnRecipe(t policy.Table, col *pg_query.ColumnDef, defSQL string, version int) string {
	bare := proto.Clone(col).(*pg_query.ColumnDef)
	bare.RawDefault = nil
	bare.Constraints = nil
	notNull := col.IsNotNull
	for _, cn := range col.Constraints {
		k := cn.GetConstraint()
		switch {
		case k == nil || k.Contype == pg_query.ConstrType_CONSTR_DEFAULT:
		case k.Contype == pg_query.ConstrType_CONSTR_NOTNULL:
			notNull = true
		default:
			bare.Constraints = append(bare.Constraints, cn)
		}
	}
	bare.IsNotNull = false
	add := policy.Deparse(policy.AlterTable(t, &pg_query.AlterTableCmd{Subtype: pg_query.AlterTableType_AT_AddColumn,
		Def: &pg_query.Node{Node: &pg_query.Node_ColumnDef{ColumnDef: bare}}}))
	colName := policy.QuoteIdent(col.Colname)
	var b strings.Builder
	b.WriteString(add + ";\n")
	fmt.Fprintf(&b, "ALTER TABLE %s ALTER COLUMN %s SET DEFAULT %s;\n", t, colName, defSQL)
	b.WriteString(policy.StepBackfill + "\n")
	b.WriteString(policy.BatchUpdateSQL(t, col.Colname, defSQL))
	if notNull {
		b.WriteString("\n-- then add NOT NULL without a long lock:\n")
		b.WriteString(notNullRecipe(t, col.Colname, version))
	}
	return b.String()
}

package rules

import (
	"fmt"
	"strings"

	"github.com/pgguard/pgguard/policy"
	"google.golang.org/protobuf/proto"

	pg_query "github.com/pganalyze/pg_query_go/v6"
)

func init() {
	policy.Register(policy.Rule{
		ID:            "alter-domain-constraint",
		Summary:       "ALTER DOMAIN ADD CONSTRAINT / SET NOT NULL / VALIDATE CONSTRAINT scans every table with a column of the domain under SHARE",
		Default:       policy.LevelReject,
		SizeDependent: true,
		Check:         checkAlterDomainConstraint,
		Verify: &policy.Verification{
			// A domain over amount's own type: the change of type is
			// binary coercible, neither a rewrite nor a scan.
			Setup: []string{
				"CREATE DOMAIN money_amount AS numeric(18,2)",
				"ALTER TABLE ledger ALTER COLUMN amount TYPE money_amount",
			},
			Statement: "ALTER DOMAIN money_amount ADD CONSTRAINT money_amount_nonnegative CHECK (VALUE >= 0)",
			Lock:      policy.LockShare,
			Work:      policy.WorkScan,
		},
	})
}

// checkAlterDomainConstraint reports, for each table with a column of the
// domain (or of a domain over it), the scan PostgreSQL makes of it under
// SHARE (validateDomainConstraint, AlterDomainNotNull; verified on
// PostgreSQL 15): ADD CONSTRAINT without NOT VALID, SET NOT NULL and
// VALIDATE CONSTRAINT, which has no form that lets writes go on. The other
// forms (DROP CONSTRAINT, SET/DROP DEFAULT, DROP NOT NULL, RENAME, ADD
// ... NOT VALID) change only the catalog and lock no table.
func checkAlterDomainConstraint(c *policy.Check, n *pg_query.Node) {
	s := n.GetAlterDomainStmt()
	if s == nil {
		return
	}
	var k *pg_query.Constraint
	switch s.Subtype {
	case "C":
		k = s.GetDef().GetConstraint()
		if k == nil || k.SkipValidation || k.Contype != pg_query.ConstrType_CONSTR_CHECK {
			return
		}
	case "O", "V":
	default:
		return
	}
	var parts []string
	for _, it := range s.TypeName {
		parts = append(parts, policy.QuoteIdent(it.GetString_().GetSval()))
	}
	dom := strings.Join(parts, ".")
	if dom == "" {
		return
	}
	what := ""
	switch s.Subtype {
	case "C":
		name := k.Conname
		if name == "" {
			name = s.TypeName[len(s.TypeName)-1].GetString_().GetSval() + "_check"
		}
		what = fmt.Sprintf("Adding CHECK constraint %s to domain %s", policy.QuoteIdent(name), dom)
	case "O":
		what = fmt.Sprintf("SET NOT NULL on domain %s", dom)
	case "V":
		what = fmt.Sprintf("VALIDATE CONSTRAINT %s of domain %s", policy.QuoteIdent(s.Name), dom)
	}
	cols, notNull, ok := c.DomainColumns(dom)
	if ok && notNull && s.Subtype == "O" {
		return // NOT NULL already: PostgreSQL does nothing (AlterDomainNotNull)
	}
	if !ok {
		c.Report(policy.Report{
			Lock:    policy.LockShare,
			Message: what + " checks every row of every table with a column of the domain while holding a SHARE lock on each, blocking all writes to them until the last one has been scanned.",
			Detail:  "Without a catalog, pgguard cannot tell which tables have a column of " + dom + ", and assumes a large one does.",
			Hint:    domainRecipe(s, k, dom, policy.Table{}, nil),
		})
		return
	}
	byTable := map[policy.Table][]string{}
	var tables []policy.Table
	for _, col := range cols {
		if _, seen := byTable[col.Table]; !seen {
			tables = append(tables, col.Table)
		}
		byTable[col.Table] = append(byTable[col.Table], col.Column)
	}
	for _, t := range tables {
		qc := make([]string, len(byTable[t]))
		for i, col := range byTable[t] {
			qc[i] = policy.QuoteIdent(col)
		}
		noun := "column"
		if len(qc) > 1 {
			noun = "columns"
		}
		c.Report(policy.Report{
			Table: t,
			Lock:  policy.LockShare,
			Message: fmt.Sprintf("%s checks every row of %s (%s %s) while holding a SHARE lock on it, blocking all writes to it until the whole table has been scanned.",
				what, t, noun, strings.Join(qc, ", ")),
			Hint: domainRecipe(s, k, dom, t, byTable[t]),
		})
	}
}

// domainRecipe adds the domain's constraint NOT VALID, which checks every
// value written from then on, and checks the existing rows of each table
// with a CHECK of its own on the column, NOT VALID and then validated
// under SHARE UPDATE EXCLUSIVE. ALTER DOMAIN ... VALIDATE CONSTRAINT
// takes SHARE on every table like ADD CONSTRAINT does (verified on
// PostgreSQL 15): the recipe says so rather than offer it as safe.
func domainRecipe(s *pg_query.AlterDomainStmt, k *pg_query.Constraint, dom string, t policy.Table, cols []string) string {
	var b strings.Builder
	var expr *pg_query.Node // the CHECK's expression over VALUE
	last := s.TypeName[len(s.TypeName)-1].GetString_().GetSval()
	name := ""
	switch s.Subtype {
	case "C":
		expr = k.RawExpr
		name = k.Conname
		if name == "" {
			name = last + "_check"
		}
		nv := proto.Clone(s).(*pg_query.AlterDomainStmt)
		nk := nv.GetDef().GetConstraint()
		nk.Conname, nk.SkipValidation, nk.InitiallyValid = name, true, false
		b.WriteString("-- add the constraint to the domain without checking existing values (catalog only; every value written from now on is checked):\n")
		b.WriteString(policy.InOwnTransaction(policy.Deparse(&pg_query.Node{Node: &pg_query.Node_AlterDomainStmt{AlterDomainStmt: nv}})+";") + "\n")
	case "O":
		// SET NOT NULL has no NOT VALID form; a CHECK has.
		expr = &pg_query.Node{Node: &pg_query.Node_NullTest{NullTest: &pg_query.NullTest{
			Arg:          &pg_query.Node{Node: &pg_query.Node_ColumnRef{ColumnRef: &pg_query.ColumnRef{Fields: []*pg_query.Node{pg_query.MakeStrNode("value")}}}},
			Nulltesttype: pg_query.NullTestType_IS_NOT_NULL}}}
		name = last + "_not_null"
		b.WriteString("-- SET NOT NULL has no NOT VALID form; a CHECK on the domain has (catalog only; every value written from now on is checked):\n")
		b.WriteString(policy.InOwnTransaction(fmt.Sprintf("ALTER DOMAIN %s ADD CONSTRAINT %s CHECK (VALUE IS NOT NULL) NOT VALID;", dom, policy.QuoteIdent(name))) + "\n")
	case "V":
		name = s.Name
		fmt.Fprintf(&b, "-- VALIDATE CONSTRAINT of a domain has no form that lets writes go on: leave %s NOT VALID (PostgreSQL checks every value written all the same),\n", policy.QuoteIdent(name))
	}
	switch {
	case expr == nil || t.Name == "":
		fmt.Fprintf(&b, "-- check the rows that exist table by table: on each table with a column of %s, the constraint's CHECK with VALUE spelled as the column, added NOT VALID, then VALIDATE CONSTRAINT %s (it scans, but holds only SHARE UPDATE EXCLUSIVE, which lets reads and writes go on);\n", dom, policy.StepSeparate)
	default:
		for _, col := range cols {
			tk := &pg_query.Constraint{Contype: pg_query.ConstrType_CONSTR_CHECK, RawExpr: valueAs(expr, col), InitiallyValid: true}
			fmt.Fprintf(&b, "-- then check the rows of %s that exist with the same CHECK on column %s, as a constraint of the table:\n", t, policy.QuoteIdent(col))
			b.WriteString(policy.NotValidRecipe(t, tk, policy.ConstraintName(t, col, name)) + "\n")
		}
	}
	fmt.Fprintf(&b, "-- ALTER DOMAIN %s VALIDATE CONSTRAINT %s scans every such table again under SHARE, blocking writes: keep the domain's constraint NOT VALID, or validate it in a quiet window with a pgguard:allow annotation for alter-domain-constraint.", dom, policy.QuoteIdent(name))
	return b.String()
}

// valueAs returns the domain CHECK expression expr with VALUE spelled as
// the column col.
func valueAs(expr *pg_query.Node, col string) *pg_query.Node {
	e := policy.CloneNode(expr)
	policy.Walk(e, func(n *pg_query.Node) bool {
		if cr := n.GetColumnRef(); cr != nil && len(cr.Fields) == 1 && cr.Fields[0].GetString_().GetSval() == "value" {
			cr.Fields[0] = pg_query.MakeStrNode(col)
		}
		return true
	})
	return e
}

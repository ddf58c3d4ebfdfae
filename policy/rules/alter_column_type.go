package rules

import (
	"fmt"
	"github.com/pgguard/pgguard/policy"
	"strings"

	pg_query "github.com/pganalyze/pg_query_go/v6"
	"github.com/pgguard/pgguard/policy/sqltext"
)

func init() {
	policy.Register(policy.Rule{
		ID:            "alter-column-type",
		Summary:       "ALTER COLUMN ... TYPE rewrites (or scans) the table under ACCESS EXCLUSIVE, except for a few binary-compatible changes",
		Default:       policy.LevelReject,
		SizeDependent: true,
		Check:         checkAlterColumnType,
		Verify: &policy.Verification{
			Statement: "ALTER TABLE ledger ALTER COLUMN currency TYPE varchar(3)",
			Lock:      policy.LockAccessExclusive,
			Work:      policy.WorkRewrite,
		},
	})
}

func checkAlterColumnType(c *policy.Check, n *pg_query.Node) {
	if s := n.GetAlterTableStmt(); s != nil && s.Objtype == pg_query.ObjectType_OBJECT_TYPE {
		checkAlterAttributeType(c, s)
		return
	}
	t, cmds := policy.AlterTableCmds(n)
	for _, cmd := range cmds {
		col := cmd.GetDef().GetColumnDef()
		if cmd.Subtype != pg_query.AlterTableType_AT_AlterColumnType || col == nil || col.TypeName == nil {
			continue
		}
		newType := typeSQL(col.TypeName)
		var detail string
		switch old, known := c.ColumnType(t, cmd.Name); {
		case col.RawDefault != nil && !castsColumnTo(col.RawDefault, cmd.Name, col.TypeName):
			detail = "With a USING clause PostgreSQL computes and writes every row's new value."
		case !known && !builtinType(col.TypeName):
			detail = fmt.Sprintf("pgguard does not know the current type of %s, so it assumes a rewrite; a change to the column's own type needs none. If %s is an enum and the column one too, give the column's enum the new labels with ALTER TYPE ... ADD VALUE instead (no rewrite).", policy.QuoteIdent(cmd.Name), newType)
		case !known:
			detail = fmt.Sprintf("pgguard does not know the current type of %s, so it assumes a rewrite; it needs none only for a change to the column's own type, varchar(n) → varchar(m ≥ n) or text, numeric(p,s) → numeric(p' ≥ p,s), and timestamp ↔ timestamptz when the session TimeZone is UTC (PostgreSQL 12+).", policy.QuoteIdent(cmd.Name))
		default:
			if why := noRewriteThroughDomains(c, old, col.TypeName); why != "" {
				if rebuilt := rebuiltIndexes(c, t, cmd.Name, col, why); len(rebuilt) > 0 {
					c.Report(policy.Report{
						Table: t,
						Lock:  policy.LockAccessExclusive,
						Message: fmt.Sprintf("Changing the type of %s.%s to %s rewrites no row but rebuilds %s, reading the whole table under an ACCESS EXCLUSIVE lock that blocks all reads and writes until it finishes. Fix: drop those indexes with DROP INDEX CONCURRENTLY first, change the type (then catalog-only), and build them again with CREATE INDEX CONCURRENTLY, outside a transaction block.",
							t, policy.QuoteIdent(cmd.Name), newType, plural(len(rebuilt), "index", "indexes")+" "+strings.Join(rebuilt, ", ")),
						Detail: "PostgreSQL reuses an index on a changed column only when it has no expression and no predicate and neither its operator class nor its collation changes; it builds the others again.",
						Hint: "-- the build is what takes long: take the indexes out of the way first, without blocking anyone\n" +
							"-- (note each definition first: SELECT pg_get_indexdef('<index>'::regclass)):\n" +
							"DROP INDEX CONCURRENTLY " + strings.Join(rebuilt, ";\nDROP INDEX CONCURRENTLY ") + ";\n" +
							"-- the type change itself is then catalog-only:\n" +
							c.SQL() + ";\n" +
							"-- and build each index again without blocking writes, outside a transaction block:\n" +
							"CREATE INDEX CONCURRENTLY <index> ON " + t.String() + " <its definition>;",
					})
				}
				continue
			}
			detail = fmt.Sprintf("The column is %s now; PostgreSQL cannot change it to %s without converting every row.", old, newType)
			if on, _, _ := typeKey(parseTypeName(old)); (on == "timestamp" || on == "timestamptz") && strings.HasPrefix(newType, "timestamp") {
				detail += fmt.Sprintf(" Between timestamp and timestamptz it needs no rewrite only on PostgreSQL 12+ with the session TimeZone set to UTC (here: version %d, TimeZone %q).", c.Version, c.Session.TimeZone)
			}
		}
		r := policy.Report{
			Table:   t,
			Lock:    policy.LockAccessExclusive,
			Message: fmt.Sprintf("Changing the type of %s.%s to %s rewrites the whole table and rebuilds its indexes under an ACCESS EXCLUSIVE lock, blocking all reads and writes until it finishes.", t, policy.QuoteIdent(cmd.Name), newType),
			Detail:  detail,
			Hint:    alterTypeRecipe(t, cmd.Name, col, c.Version),
		}
		if old, known := c.ColumnType(t, cmd.Name); known && c.IsEnum(old) {
			// An enum gains labels in place: ALTER TYPE ... ADD VALUE
			// touches no table.
			old = typeOutsideTransaction(c, old, newType)
			add := fmt.Sprintf("ALTER TYPE %s ADD VALUE IF NOT EXISTS '<new label>'", old)
			r.Message += " " + strings.Replace(policy.OutsideTransactionFix(c.Session.Tool, add+", once per new label,"),
				"Fix: run", "Fix: keep the column's type and give its enum the new labels: run", 1)
			r.Detail = policy.JoinSentences(r.Detail, fmt.Sprintf("%s is an enum: ALTER TYPE %s ADD VALUE adds a label without touching the table (PostgreSQL 12+ allows it in a transaction block, but the label is usable only once that commits).", old, old))
			r.Hint = "-- give the column's enum the new labels instead: no rewrite, no lock on the table\n" +
				c.OutsideTransaction() + "\n" +
				add + ";  -- one statement per new label (BEFORE/AFTER '<label>' to place it)\n" +
				"-- only if the column really must change to another type, the online way:\n" + r.Hint
		}
		c.Report(r)
	}
}

// checkAlterAttributeType: ALTER TYPE ... ALTER ATTRIBUTE ... TYPE ...
// CASCADE changes the column of every typed table of the composite type
// (CREATE TABLE ... OF type) as ALTER COLUMN ... TYPE would, rewriting
// each under ACCESS EXCLUSIVE. Which tables, and how big, the statement
// does not say, so they are assumed large. Without CASCADE PostgreSQL
// refuses the change when a typed table exists, and rewrites nothing.
func checkAlterAttributeType(c *policy.Check, s *pg_query.AlterTableStmt) {
	typ := policy.TableOf(s.Relation)
	for _, n := range s.Cmds {
		cmd := n.GetAlterTableCmd()
		col := cmd.GetDef().GetColumnDef()
		if cmd == nil || cmd.Subtype != pg_query.AlterTableType_AT_AlterColumnType || col == nil || col.TypeName == nil ||
			cmd.Behavior != pg_query.DropBehavior_DROP_CASCADE {
			continue
		}
		newType := typeSQL(col.TypeName)
		detail := fmt.Sprintf("pgguard does not know the current type of attribute %s, so it assumes a rewrite.", policy.QuoteIdent(cmd.Name))
		if old, known := c.ColumnType(typ, cmd.Name); known {
			if noRewriteTypeChange(old, col.TypeName, c.Version, c.Session.TimeZone) != "" {
				continue
			}
			detail = fmt.Sprintf("The attribute is %s now; PostgreSQL cannot change it to %s without converting every row of every typed table.", old, newType)
		}
		c.Report(policy.Report{
			// No table named: the typed tables are assumed large.
			Lock:    policy.LockAccessExclusive,
			Message: fmt.Sprintf("Changing the type of attribute %s of composite type %s to %s with CASCADE rewrites every table created OF %s (and rebuilds its indexes) under an ACCESS EXCLUSIVE lock, blocking all reads and writes until it finishes. Fix: detach each large typed table from the type (ALTER TABLE ... NOT OF) and change its column the online way (a new column kept in step by a trigger, backfilled in batches, swapped in), then alter the type without CASCADE.", policy.QuoteIdent(cmd.Name), typ, newType, typ),
			Detail:  detail,
			Hint: fmt.Sprintf("-- see which tables are typed tables of %s:\n", typ) +
				fmt.Sprintf("SELECT c.oid::regclass FROM pg_class c WHERE c.reloftype = '%s'::regtype;\n", strings.ReplaceAll(typ.String(), "'", "''")) +
				"-- on a large one, detach it from the type (ALTER TABLE ... NOT OF, brief lock) and change its column the online way\n" +
				"-- (a new column kept in step by a trigger, backfilled in batches, swapped in), then alter the type without CASCADE.",
		})
	}
}

// noRewriteThroughDomains is noRewriteTypeChange, with domains read as
// the types they are based on where the catalog can say: a column changed
// to or from a domain without constraints is converted as its base type
// is (a domain with constraints checks every row: a rewrite), and leaving
// a domain for its base type checks nothing (ATColumnChangeRequiresRewrite).
func noRewriteThroughDomains(c *policy.Check, old string, newType *pg_query.TypeName) string {
	if why := noRewriteTypeChange(old, newType, c.Version, c.Session.TimeZone); why != "" {
		return why
	}
	if len(newType.GetArrayBounds()) > 0 {
		return ""
	}
	if !builtinType(newType) {
		domain, constrained, _, base, ok := c.Domain(typeSQL(newType))
		if !ok || !domain || constrained || base == "" {
			return ""
		}
		if newType = parseTypeName(base); newType == nil {
			return ""
		}
	}
	if ot := parseTypeName(old); ot != nil && !builtinType(ot) {
		if domain, _, _, base, ok := c.Domain(old); ok && domain && base != "" {
			old = base
		}
	}
	return noRewriteTypeChange(old, newType, c.Version, c.Session.TimeZone)
}

// rebuiltIndexes lists the indexes on column that a type change PostgreSQL
// makes without rewriting the table still builds again
// (CheckIndexCompatible): those with an expression or predicate, and all
// of them when the collation is given (pgguard does not know the current
// one) or the operator class changes (timestamp ↔ timestamptz: why is
// noRewriteTypeChange's answer).
func rebuiltIndexes(c *policy.Check, t policy.Table, column string, col *pg_query.ColumnDef, why string) []string {
	plain, exprs, ok := c.ColumnIndexes(t, column)
	if !ok {
		return nil
	}
	if col.CollClause != nil || why == "same instant in UTC" {
		return append(plain, exprs...)
	}
	return exprs
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// builtinType reports whether a type name is one of PostgreSQL's own
// (the parser puts the SQL-standard ones in pg_catalog).
func builtinType(tn *pg_query.TypeName) bool {
	if tn == nil || len(tn.Names) == 0 {
		return true
	}
	if len(tn.Names) > 1 {
		return tn.Names[0].GetString_().GetSval() == "pg_catalog"
	}
	switch strings.ToLower(tn.Names[0].GetString_().GetSval()) {
	case "text", "varchar", "char", "bpchar", "int", "int2", "int4", "int8", "integer", "bigint", "smallint",
		"numeric", "decimal", "float4", "float8", "real", "bool", "boolean", "date", "time", "timetz", "timestamp",
		"timestamptz", "interval", "uuid", "json", "jsonb", "bytea", "inet", "cidr", "macaddr", "money", "xml",
		"bit", "varbit", "tsvector", "tsquery", "oid", "citext", "serial", "bigserial", "smallserial":
		return true
	}
	return false
}

// castsColumnTo reports whether a USING expression is the column itself,
// or the column cast to the new type (sequelize's changeColumn writes
// USING ("col"::"public"."enum_t_col")): PostgreSQL then converts as it
// would without USING, and changing a column to its own type rewrites
// nothing.
func castsColumnTo(expr *pg_query.Node, column string, tn *pg_query.TypeName) bool {
	if tc := expr.GetTypeCast(); tc != nil {
		if !sameTypeName(tc.TypeName, tn) {
			return false
		}
		expr = tc.Arg
	}
	f := expr.GetColumnRef().GetFields()
	return len(f) == 1 && f[0].GetString_().GetSval() == column
}

// sameTypeName reports whether two type names name the same type: the
// same name, the same schema when both give one, the same modifiers.
func sameTypeName(a, b *pg_query.TypeName) bool {
	an, am, ok1 := typeKey(a)
	bn, bm, ok2 := typeKey(b)
	if !ok1 || !ok2 || an != bn || fmt.Sprint(am) != fmt.Sprint(bm) {
		return false
	}
	if len(a.Names) > 1 && len(b.Names) > 1 {
		as, bs := a.Names[len(a.Names)-2].GetString_().GetSval(), b.Names[len(b.Names)-2].GetString_().GetSval()
		return as == bs
	}
	return true
}

func typeSQL(tn *pg_query.TypeName) string {
	// DeparseExpr of NULL::type gives "NULL::type".
	cast := &pg_query.Node{Node: &pg_query.Node_TypeCast{TypeCast: &pg_query.TypeCast{
		Arg: &pg_query.Node{Node: &pg_query.Node_AConst{AConst: &pg_query.A_Const{Isnull: true}}}, TypeName: tn}}}
	return strings.TrimPrefix(policy.DeparseExpr(cast), "NULL::")
}

// typeKey is a type's base name (pg_catalog stripped) and its integer
// modifiers; ok is false for arrays and modifiers that are not constants.
func typeKey(tn *pg_query.TypeName) (name string, mods []int32, ok bool) {
	if tn == nil || len(tn.Names) == 0 || len(tn.ArrayBounds) > 0 || tn.Setof {
		return "", nil, false
	}
	name = strings.ToLower(tn.Names[len(tn.Names)-1].GetString_().GetSval())
	for _, m := range tn.Typmods {
		ac := m.GetAConst()
		if ac == nil || ac.GetIval() == nil {
			return "", nil, false
		}
		mods = append(mods, ac.GetIval().Ival)
	}
	return name, mods, true
}

// parseTypeName parses an SQL type (as format_type spells it).
func parseTypeName(sql string) *pg_query.TypeName {
	res, err := sqltext.PgParse("SELECT NULL::" + sql)
	if err != nil || len(res.Stmts) != 1 {
		return nil
	}
	sel := res.Stmts[0].Stmt.GetSelectStmt()
	if sel == nil || len(sel.TargetList) != 1 {
		return nil
	}
	tc := sel.TargetList[0].GetResTarget().GetVal().GetTypeCast()
	if tc == nil {
		return nil
	}
	return tc.TypeName
}

// noRewriteTypeChange explains why changing a column of type oldSQL to
// newType needs neither a rewrite nor a scan, or returns "".
func noRewriteTypeChange(oldSQL string, newType *pg_query.TypeName, version int, timeZone string) string {
	on, om, ok1 := typeKey(parseTypeName(oldSQL))
	nn, nm, ok2 := typeKey(newType)
	if !ok1 || !ok2 {
		return ""
	}
	wider := func(i int) bool { return len(nm) == 0 || (len(om) > i && len(nm) > i && nm[i] >= om[i]) }
	scale := func(m []int32) int32 {
		if len(m) > 1 {
			return m[1]
		}
		return 0
	}
	switch {
	case on == nn && len(om) == len(nm) && (len(om) == 0 || fmt.Sprint(om) == fmt.Sprint(nm)) && sameSchema(parseTypeName(oldSQL), newType):
		return "same type"
	case (on == "varchar" || on == "text") && nn == "text",
		on == "text" && nn == "varchar" && len(nm) == 0:
		return "binary compatible"
	case on == "varchar" && nn == "varchar" && (len(om) == 0 && len(nm) == 0 || len(om) == 1 && wider(0)),
		on == "varbit" && nn == "varbit" && (len(om) == 0 && len(nm) == 0 || len(om) == 1 && wider(0)):
		return "longer limit"
	case on == "numeric" && nn == "numeric" && (len(nm) == 0 || len(om) > 0 && nm[0] >= om[0] && scale(nm) == scale(om)):
		return "wider precision, same scale"
	case on == "cidr" && nn == "inet":
		return "binary compatible"
	case (on == "timestamp" && nn == "timestamptz" || on == "timestamptz" && nn == "timestamp") && version >= 12 && isUTC(timeZone):
		if len(nm) == 0 || len(om) > 0 && nm[0] >= om[0] {
			return "same instant in UTC"
		}
	}
	return ""
}

// sameSchema reports whether a column's type as format_type spells it
// (schema-qualified only when the search_path does not find it) and a new
// type name can be the same type: a qualified old type is another type
// than an unqualified name, which the search_path resolves elsewhere.
func sameSchema(old, newType *pg_query.TypeName) bool {
	schema := func(tn *pg_query.TypeName) string {
		if tn == nil || len(tn.Names) < 2 {
			return ""
		}
		return tn.Names[len(tn.Names)-2].GetString_().GetSval()
	}
	os, ns := schema(old), schema(newType)
	switch {
	case os == "" || os == "pg_catalog":
		return true // visible in the search_path, as an unqualified new name would resolve
	case ns == "":
		return false
	}
	return os == ns
}

func isUTC(tz string) bool {
	switch strings.ToLower(tz) {
	case "utc", "etc/utc", "gmt", "etc/gmt", "etc/universal", "universal", "zulu", "etc/zulu", "uct", "etc/uct", "gmt0", "etc/gmt0":
		return true
	}
	return false
}

// alterTypeRecipe: a new column kept in sync by a trigger, backfilled in
// batches, then swapped in.
func alterTypeRecipe(t policy.Table, column string, col *pg_query.ColumnDef, version int) string {
	newCol := policy.RelationName(column + "_new")
	conv := col.RawDefault
	if conv == nil {
		conv = &pg_query.Node{Node: &pg_query.Node_TypeCast{TypeCast: &pg_query.TypeCast{
			Arg:      &pg_query.Node{Node: &pg_query.Node_ColumnRef{ColumnRef: &pg_query.ColumnRef{Fields: []*pg_query.Node{pg_query.MakeStrNode(column)}}}},
			TypeName: col.TypeName}}}
	}
	bare := &pg_query.ColumnDef{Colname: newCol, TypeName: col.TypeName, IsLocal: true, CollClause: col.CollClause}
	q, qn := policy.QuoteIdent(column), policy.QuoteIdent(newCol)
	fn := policy.InSchema(t, policy.ConstraintName(t, newCol, "sync"))
	var b strings.Builder
	b.WriteString("-- add a column of the new type (no rewrite):\n")
	b.WriteString(policy.AddColumnSQL(t, bare) + ";\n")
	b.WriteString("-- keep it in step with the old one for new and updated rows:\n")
	b.WriteString(policy.FillTriggerSQL(t, newCol, policy.DeparseExpr(policy.NewRowExpr(conv)), "sync", version) + "\n")
	b.WriteString(policy.StepBackfill + "\n")
	b.WriteString(policy.BatchUpdateWhereSQL(t, newCol, policy.DeparseExpr(conv), fmt.Sprintf("%s IS NULL AND %s IS NOT NULL", qn, q)) + "\n")
	fmt.Fprintf(&b, "-- if %s is NOT NULL, make %s NOT NULL too without a long lock (see the set-not-null rule), and recreate on %s the indexes,\n", q, qn, qn)
	b.WriteString("-- constraints and default of the old column (CREATE INDEX CONCURRENTLY, ADD CONSTRAINT ... NOT VALID + VALIDATE, SET DEFAULT).\n")
	b.WriteString("-- then swap the columns in one short transaction (brief ACCESS EXCLUSIVE locks); pgguard rejects DROP COLUMN and RENAME COLUMN\n")
	b.WriteString("-- by default, so run these with a pgguard:allow annotation once the application can live with the swap:\n")
	fmt.Fprintf(&b, "DROP TRIGGER %s ON %s;\n", policy.QuoteIdent(policy.ConstraintName(t, newCol, "sync")), t)
	fmt.Fprintf(&b, "DROP FUNCTION %s();\n", fn)
	fmt.Fprintf(&b, "ALTER TABLE %s DROP COLUMN %s;\n", t, q)
	fmt.Fprintf(&b, "ALTER TABLE %s RENAME COLUMN %s TO %s;", t, qn, q)
	return b.String()
}

// typeOutsideTransaction names the column's enum as it is outside the
// transaction block: TypeORM's generated change of an enum's labels
// renames the type to <name>_old, creates <name> anew and moves the
// column to it, all in one transaction; refused, that transaction rolls
// back, and the enum the fix must name is <name> again.
func typeOutsideTransaction(c *policy.Check, current, target string) string {
	if !c.Session.InTransaction {
		return current
	}
	cur, tgt := policy.ParseTableName(current), policy.ParseTableName(target)
	if cur.Name == tgt.Name+"_old" && (cur.Schema == "" || tgt.Schema == "" || cur.Schema == tgt.Schema) {
		return target
	}
	return current
}

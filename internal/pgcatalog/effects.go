package pgcatalog

import (
	"context"
	"encoding/json"
	"strings"

	"github.com/pgguard/pgguard/policy"
)

var _ policy.EffectsCatalog = (*Catalog)(nil)

// ruleEvent and triggerEvent are pg_rewrite.ev_type and the pg_trigger
// tgtype bit of an event.
var (
	ruleEvent    = map[string]string{"UPDATE": "2", "INSERT": "3", "DELETE": "4"}
	triggerEvent = map[string]string{"INSERT": "4", "DELETE": "8", "UPDATE": "16"}
)

// firesHere is the condition on a rule's or trigger's enabled state
// (ev_enabled, tgenabled) under which it fires in this session:
// 'O' (ENABLE) in origin and local mode, 'R' (ENABLE REPLICA) in replica
// mode, 'A' (ENABLE ALWAYS) always, 'D' never.
func firesHere(col string) string {
	return "(" + col + " = 'A' OR (" + col + " = 'O' AND pg_catalog.current_setting('session_replication_role') <> 'replica')" +
		" OR (" + col + " = 'R' AND pg_catalog.current_setting('session_replication_role') = 'replica'))"
}

// TableEffects reads pg_rewrite and pg_trigger (and the trigger
// functions' pg_proc rows): catalogs only, so it cannot fail or lock
// anything inside a transaction block.
func (c *Catalog) TableEffects(ctx context.Context, table, event string) (policy.Effects, bool) {
	ev, tbit := ruleEvent[event], triggerEvent[event]
	if blank(table) || ev == "" {
		return policy.Effects{}, false
	}
	if e, ok := c.Memo.effectsOf(table, event); ok {
		return e, true
	}
	rows, ok := c.query("SELECT 'rule', NULL, NULL, NULL, NULL, NULL FROM (SELECT c.oid" + relationFilter(table) + ") r" +
		" WHERE EXISTS (SELECT 1 FROM pg_catalog.pg_rewrite w WHERE w.ev_class = r.oid AND w.ev_type = '" + ev + "' AND w.rulename <> '_RETURN' AND " + firesHere("w.ev_enabled") + ")" +
		" UNION ALL SELECT 'trigger', t.tgname::text, pn.nspname || '.' || p.proname, l.lanname::text, p.prosrc, ((t.tgtype::int & 1) = 1)" +
		" FROM (SELECT c.oid" + relationFilter(table) + ") r JOIN pg_catalog.pg_trigger t ON t.tgrelid = r.oid" +
		" JOIN pg_catalog.pg_proc p ON p.oid = t.tgfoid JOIN pg_catalog.pg_namespace pn ON pn.oid = p.pronamespace" +
		" JOIN pg_catalog.pg_language l ON l.oid = p.prolang" +
		" WHERE NOT t.tgisinternal AND (t.tgtype::int & " + tbit + ") <> 0 AND " + firesHere("t.tgenabled") +
		" ORDER BY 1, 2")
	if !ok {
		return policy.Effects{}, false
	}
	var e policy.Effects
	for _, r := range rows {
		if len(r) != 6 || r[0] == nil {
			return policy.Effects{}, false
		}
		if *r[0] == "rule" {
			e.Rules = true
			continue
		}
		e.Triggers = append(e.Triggers, policy.Trigger{Name: text(r[1]), Function: text(r[2]), Language: text(r[3]), Body: text(r[4]), ForEachRow: IsTrue(r[5])})
	}
	c.Memo.keepEffects(table, event, e)
	return e, true
}

func text(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

// EstimateChanges runs EXPLAIN (VERBOSE, FORMAT JSON) of the statement
// itself, only when the session is idle: inside a transaction block
// EXPLAIN of an UPDATE takes a command id of the client's transaction,
// and its SELECT form does not go through the table's rules.
func (c *Catalog) EstimateChanges(ctx context.Context, sql string) ([]policy.TableRows, bool) {
	if blank(sql) || !c.Q.Idle() {
		return nil, false
	}
	explain, ok := ExplainStatement(sql, c.Q.ServerVersion())
	if !ok {
		return nil, false
	}
	explain = strings.Replace(explain, "EXPLAIN (", "EXPLAIN (VERBOSE, ", 1)
	rows, ok := c.query(explain)
	if !ok || len(rows) != 1 || len(rows[0]) != 1 || rows[0][0] == nil {
		return nil, false
	}
	return planChanges(*rows[0][0])
}

// modifyPlan is the part of EXPLAIN (VERBOSE, FORMAT JSON) that says which
// table a ModifyTable changes and how many rows.
type modifyPlan struct {
	NodeType  string       `json:"Node Type"`
	Operation string       `json:"Operation"`
	Relation  string       `json:"Relation Name"`
	Schema    string       `json:"Schema"`
	Conflict  string       `json:"Conflict Resolution"`
	Parent    string       `json:"Parent Relationship"`
	PlanRows  float64      `json:"Plan Rows"`
	Plans     []modifyPlan `json:"Plans"`
}

// planChanges lists every ModifyTable of every plan of an EXPLAIN (one
// plan per query the rewriter made of the statement), wherever it sits
// (a data-modifying WITH query's is under a CTE Scan's parent). Its rows
// are those of the plan under it (its own estimate is 0 without
// RETURNING).
func planChanges(js string) ([]policy.TableRows, bool) {
	var out []struct {
		Plan modifyPlan `json:"Plan"`
	}
	if err := json.Unmarshal([]byte(js), &out); err != nil || len(out) == 0 {
		return nil, false
	}
	var changes []policy.TableRows
	var walk func(p *modifyPlan, depth int)
	walk = func(p *modifyPlan, depth int) {
		if depth > 200 {
			return
		}
		if p.NodeType == "ModifyTable" && p.Relation != "" {
			var children []explainPlan
			for _, ch := range p.Plans {
				children = append(children, explainPlan{Parent: ch.Parent, PlanRows: ch.PlanRows})
			}
			rows := max(p.PlanRows, sourceRows(children))
			changes = append(changes, policy.TableRows{Table: policy.Table{Schema: p.Schema, Name: p.Relation},
				Verb: p.Operation, Upsert: p.Conflict == "UPDATE", Rows: int64(rows)})
		}
		for i := range p.Plans {
			walk(&p.Plans[i], depth+1)
		}
	}
	for i := range out {
		walk(&out[i].Plan, 0)
	}
	return changes, true
}

var _ policy.FunctionCatalog = (*Catalog)(nil)

// FunctionBodies reads pg_proc for the named functions: catalogs only.
func (c *Catalog) FunctionBodies(ctx context.Context, names []string) ([]policy.Function, bool) {
	if len(names) == 0 {
		return nil, true
	}
	if fs, ok := c.Memo.bodiesOf(names); ok {
		return fs, true
	}
	var match []string
	for _, name := range names {
		if blank(name) {
			return nil, false
		}
		t := policy.ParseTableName(name)
		match = append(match, "(p.proname = "+QuoteLiteral(t.Name)+schemaFilter(t.Schema)+")")
	}
	// A SQL-standard body (BEGIN ATOMIC ... END, RETURN expr; PostgreSQL
	// 14+) is kept parsed in prosqlbody, and prosrc is empty: the server
	// deparses it (sqlStandardBody makes statements of it).
	body := "p.prosrc"
	if v := c.Q.ServerVersion(); v == 0 || v >= 140000 {
		body = "CASE WHEN p.prosqlbody IS NOT NULL THEN " + sqlBodyMark + " || pg_catalog.pg_get_function_sqlbody(p.oid) ELSE p.prosrc END"
	}
	rows, ok := c.query("SELECT n.nspname || '.' || p.proname, l.lanname::text, " + body + "," +
		" (SELECT string_agg(coalesce(p.proargnames[a.i], '') || chr(30) || pg_catalog.format_type(a.t, NULL), chr(31) ORDER BY a.i)" +
		" FROM unnest(coalesce(p.proallargtypes, p.proargtypes::oid[])) WITH ORDINALITY AS a(t, i))," +
		" (p.prorettype = 'pg_catalog.trigger'::pg_catalog.regtype)" +
		" FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace JOIN pg_catalog.pg_language l ON l.oid = p.prolang" +
		" WHERE l.lanname IN ('sql', 'plpgsql') AND p.provolatile = 'v' AND n.nspname NOT IN ('pg_catalog', 'information_schema')" +
		" AND (" + strings.Join(match, " OR ") + ") ORDER BY 1, p.oid")
	if !ok {
		return nil, false
	}
	var out []policy.Function
	for _, r := range rows {
		if len(r) != 5 {
			return nil, false
		}
		f := policy.Function{Name: text(r[0]), Language: text(r[1]), Body: sqlStandardBody(text(r[2])), Trigger: IsTrue(r[4])}
		if r[3] != nil && *r[3] != "" {
			for _, a := range strings.Split(*r[3], "\x1f") {
				name, typ, _ := strings.Cut(a, "\x1e")
				f.Args = append(f.Args, policy.FunctionArg{Name: name, Type: typ})
			}
		}
		out = append(out, f)
	}
	c.Memo.keepBodies(names, out)
	return out, true
}

var _ policy.UserCodeCatalog = (*Catalog)(nil)

// UserCode reads pg_proc, pg_depend and the relations' view rules,
// triggers, column defaults and constraints: catalogs only. The
// definitions of rules (a view's query), defaults, CHECK constraints and
// trigger conditions are listed as SQL functions whose body is the
// definition, named by what they are. A name that
// is no relation (or no function) is left out by the catalog itself
// (to_regclass gives NULL).
func (c *Catalog) UserCode(ctx context.Context, relations, functions []policy.Table) ([]policy.CodeFunction, bool) {
	if len(relations) == 0 && len(functions) == 0 {
		return nil, true
	}
	rels := []string{"NULL"}
	for _, r := range relations {
		if r.Name == "" {
			continue
		}
		rels = append(rels, QuoteLiteral(r.String()))
	}
	fns := []string{"(NULL, NULL)"}
	for _, f := range functions {
		if f.Name == "" {
			continue
		}
		fns = append(fns, "("+QuoteLiteral(f.Schema)+", "+QuoteLiteral(f.Name)+")")
	}
	rows, ok := c.query("WITH RECURSIVE names(schema, name) AS (VALUES " + strings.Join(fns, ", ") + ")," +
		" rel(oid) AS (SELECT r FROM (SELECT pg_catalog.to_regclass(x) AS r FROM unnest(ARRAY[" + strings.Join(rels, ", ") + "]::text[]) x) s WHERE r IS NOT NULL" +
		" UNION SELECT d.refobjid FROM rel JOIN pg_catalog.pg_rewrite w ON w.ev_class = rel.oid JOIN pg_catalog.pg_depend d" +
		" ON d.classid = 'pg_catalog.pg_rewrite'::pg_catalog.regclass AND d.objid = w.oid AND d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass AND d.refobjid <> rel.oid)," +
		" obj(classid, objid) AS (" +
		"SELECT 'pg_catalog.pg_rewrite'::pg_catalog.regclass, w.oid FROM pg_catalog.pg_rewrite w JOIN rel ON w.ev_class = rel.oid" +
		" UNION ALL SELECT 'pg_catalog.pg_trigger'::pg_catalog.regclass, t.oid FROM pg_catalog.pg_trigger t JOIN rel ON t.tgrelid = rel.oid WHERE NOT t.tgisinternal" +
		" UNION ALL SELECT 'pg_catalog.pg_attrdef'::pg_catalog.regclass, a.oid FROM pg_catalog.pg_attrdef a JOIN rel ON a.adrelid = rel.oid" +
		" UNION ALL SELECT 'pg_catalog.pg_constraint'::pg_catalog.regclass, k.oid FROM pg_catalog.pg_constraint k JOIN rel ON k.conrelid = rel.oid" +
		// The CHECKs of the domains of the relations' columns, and of
		// the domains the text names (a cast to one): writing a value
		// runs them.
		" UNION ALL SELECT 'pg_catalog.pg_constraint'::pg_catalog.regclass, k.oid FROM pg_catalog.pg_attribute a JOIN rel ON a.attrelid = rel.oid" +
		" JOIN pg_catalog.pg_constraint k ON k.contypid = a.atttypid WHERE a.attnum > 0 AND NOT a.attisdropped" +
		" UNION ALL SELECT 'pg_catalog.pg_constraint'::pg_catalog.regclass, k.oid FROM pg_catalog.pg_constraint k JOIN pg_catalog.pg_type t ON t.oid = k.contypid" +
		" JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace JOIN names v ON t.typname = v.name" +
		" AND (n.nspname = v.schema OR (v.schema = '' AND n.nspname = ANY (pg_catalog.current_schemas(true)))))," +
		" fn(oid) AS (SELECT d.refobjid FROM pg_catalog.pg_depend d JOIN obj ON d.classid = obj.classid AND d.objid = obj.objid" +
		" WHERE d.refclassid = 'pg_catalog.pg_proc'::pg_catalog.regclass" +
		" UNION SELECT p.oid FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace JOIN names v ON p.proname = v.name" +
		" AND (n.nspname = v.schema OR (v.schema = '' AND n.nspname = ANY (pg_catalog.current_schemas(true))))" +
		// An operator the text uses runs its function; a cast to a type
		// the text names runs the cast's.
		" UNION SELECT o.oprcode::pg_catalog.oid FROM pg_catalog.pg_operator o JOIN pg_catalog.pg_namespace n ON n.oid = o.oprnamespace JOIN names v ON o.oprname = v.name" +
		" AND (n.nspname = v.schema OR (v.schema = '' AND n.nspname = ANY (pg_catalog.current_schemas(true)))) WHERE o.oprcode <> 0" +
		" UNION SELECT c.castfunc FROM pg_catalog.pg_cast c JOIN pg_catalog.pg_type t ON t.oid = c.casttarget JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace JOIN names v ON t.typname = v.name" +
		" AND (n.nspname = v.schema OR (v.schema = '' AND n.nspname = ANY (pg_catalog.current_schemas(true)))) WHERE c.castfunc <> 0)" +
		" SELECT DISTINCT n.nspname || '.' || p.proname, l.lanname::text, p.prosrc, n.nspname IN ('pg_catalog', 'information_schema')," +
		" EXISTS (SELECT 1 FROM pg_catalog.pg_depend e WHERE e.classid = 'pg_catalog.pg_proc'::pg_catalog.regclass AND e.objid = p.oid AND e.deptype = 'e')," +
		" false" +
		" FROM fn JOIN pg_catalog.pg_proc p ON p.oid = fn.oid JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace JOIN pg_catalog.pg_language l ON l.oid = p.prolang" +
		" WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') OR p.proname = 'set_config'" +
		// What calls built-in functions records no dependency on them
		// (they are pinned): the definitions themselves are read.
		" UNION ALL SELECT 'the query of view or rule ' || w.rulename::text || ' of ' || w.ev_class::pg_catalog.regclass::text, 'sql', pg_catalog.pg_get_ruledef(w.oid), false, false, true" +
		" FROM pg_catalog.pg_rewrite w JOIN rel ON w.ev_class = rel.oid" +
		" UNION ALL SELECT 'a column DEFAULT of ' || a.adrelid::pg_catalog.regclass::text, 'sql', pg_catalog.pg_get_expr(a.adbin, a.adrelid), false, false, true" +
		" FROM pg_catalog.pg_attrdef a JOIN rel ON a.adrelid = rel.oid" +
		" UNION ALL SELECT 'a CHECK constraint of ' || k.conrelid::pg_catalog.regclass::text, 'sql', pg_catalog.pg_get_constraintdef(k.oid), false, false, true" +
		" FROM pg_catalog.pg_constraint k JOIN rel ON k.conrelid = rel.oid WHERE k.contype = 'c'" +
		" UNION ALL SELECT 'a CHECK of domain ' || k.contypid::pg_catalog.regtype::text, 'sql', pg_catalog.pg_get_constraintdef(k.oid), false, false, true" +
		" FROM obj JOIN pg_catalog.pg_constraint k ON obj.classid = 'pg_catalog.pg_constraint'::pg_catalog.regclass AND k.oid = obj.objid WHERE k.contypid <> 0" +
		" UNION ALL SELECT 'the WHEN of trigger ' || t.tgname::text || ' of ' || t.tgrelid::pg_catalog.regclass::text, 'sql', pg_catalog.pg_get_triggerdef(t.oid), false, false, true" +
		" FROM pg_catalog.pg_trigger t JOIN rel ON t.tgrelid = rel.oid WHERE NOT t.tgisinternal AND t.tgqual IS NOT NULL" +
		" ORDER BY 1")
	if !ok {
		return nil, false
	}
	out := make([]policy.CodeFunction, 0, len(rows))
	for _, r := range rows {
		if len(r) != 6 {
			return nil, false
		}
		out = append(out, policy.CodeFunction{Name: text(r[0]), Language: text(r[1]), Body: text(r[2]),
			Builtin: IsTrue(r[3]), Extension: IsTrue(r[4]), Definition: IsTrue(r[5])})
	}
	return out, true
}

// sqlBodyMark starts the text of a SQL-standard body in FunctionBodies's
// answer, to tell it from a prosrc that reads "RETURN ..." or "BEGIN
// ATOMIC ..." (a body that does not parse as SQL).
const sqlBodyMark = "pg_catalog.chr(1)"

// sqlStandardBody makes the statements of a SQL-standard body out of what
// pg_get_function_sqlbody returns: the statements between BEGIN ATOMIC
// and END, or SELECT expr for RETURN expr. Any other text (prosrc) is
// returned as it is.
func sqlStandardBody(s string) string {
	rest, ok := strings.CutPrefix(s, "\x01")
	if !ok {
		return s
	}
	rest = strings.TrimSpace(rest)
	if inner, ok := strings.CutPrefix(rest, "BEGIN ATOMIC"); ok {
		if inner, ok := strings.CutSuffix(inner, "END"); ok {
			return strings.TrimSpace(inner)
		}
	}
	if expr, ok := strings.CutPrefix(rest, "RETURN "); ok {
		return "SELECT " + expr
	}
	return rest
}

var _ policy.CascadeCatalog = (*Catalog)(nil)

// CascadeDrops reads pg_depend (and pg_class, pg_attribute) for what a
// CASCADE drop of the object drops: catalogs only. A column of a relation
// that is dropped whole is not listed.
func (c *Catalog) CascadeDrops(ctx context.Context, kind, name, args string) ([]policy.Dropped, bool) {
	t := policy.ParseTableName(name)
	if blank(name) || t.Name == "" {
		return nil, false
	}
	obj, class := policy.CascadeObjectSQL(kind, t, args)
	rows, ok := c.query("SELECT " + obj + " IS NOT NULL")
	if !ok || len(rows) != 1 || len(rows[0]) != 1 || !IsTrue(rows[0][0]) {
		return nil, false
	}
	rows, ok = c.query(policy.CascadeDependentsSQL(obj, class) +
		" SELECT n.nspname::text, r.relname::text, coalesce(a.attname::text, ''), r.relkind::text" +
		" FROM d JOIN pg_catalog.pg_class r ON r.oid = d.objid JOIN pg_catalog.pg_namespace n ON n.oid = r.relnamespace" +
		" LEFT JOIN pg_catalog.pg_attribute a ON a.attrelid = r.oid AND a.attnum = d.objsubid AND d.objsubid > 0 AND NOT a.attisdropped" +
		" WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass AND r.relkind IN ('r', 'p', 'v', 'm', 'f')" +
		" AND (d.objsubid = 0 OR a.attname IS NOT NULL) ORDER BY 1, 2, 3")
	if !ok {
		return nil, false
	}
	var out []policy.Dropped
	whole := map[policy.Table]bool{}
	for _, r := range rows {
		if len(r) != 4 {
			return nil, false
		}
		d := policy.Dropped{Table: policy.Table{Schema: text(r[0]), Name: text(r[1])}, Column: text(r[2]), Kind: text(r[3])}
		if d.Kind == "v" || d.Kind == "m" {
			// A view loses no column: what depends on one of its
			// columns drops the view.
			d.Column = ""
		}
		if d.Column == "" {
			if whole[d.Table] {
				continue
			}
			whole[d.Table] = true
		}
		out = append(out, d)
	}
	kept := out[:0]
	for _, d := range out {
		if d.Column == "" || !whole[d.Table] {
			kept = append(kept, d)
		}
	}
	return kept, true
}

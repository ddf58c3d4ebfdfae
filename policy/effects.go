package policy

import (
	"context"
	"strings"

	pg_query "github.com/pganalyze/pg_query_go/v6"
)

// EffectsCatalog is an optional extension of Catalog for rule large-dml:
// what a statement changes besides the rows of the table it names. A
// rewrite rule on the table runs its actions with the statement (EXPLAIN
// then returns one plan per rewritten query), a trigger runs its
// function's statements, a function called anywhere runs its body.
type EffectsCatalog interface {
	// TableEffects reports what else a statement of event ("UPDATE",
	// "DELETE" or "INSERT") on table runs: whether the table has a rewrite
	// rule for it (a view's _RETURN rule is not one), and the user
	// triggers that fire for it in this session (enabled, as
	// session_replication_role says; internal and foreign-key triggers
	// left out).
	TableEffects(ctx context.Context, table, event string) (Effects, bool)
	// EstimateChanges asks the planner (EXPLAIN, never executed) for the
	// rows every ModifyTable of every plan of sql changes: the statement's
	// own and those of the queries its table's rules add. ok is false when
	// it cannot be asked without leaving a trace in the session (inside a
	// transaction block EXPLAIN of a data-modifying statement takes a
	// command id) or the server cannot plan it.
	EstimateChanges(ctx context.Context, sql string) ([]TableRows, bool)
}

// Effects is what else a statement on a table runs.
type Effects struct {
	// Rules: the table has a rewrite rule for the event.
	Rules bool
	// Triggers fire for the event.
	Triggers []Trigger
}

// Trigger is a user trigger and the body of its function.
type Trigger struct {
	Name     string
	Function string // schema.name of the trigger function
	// Language is the function's language (plpgsql, sql, c, internal, ...).
	Language string
	// Body is pg_proc.prosrc: the function's source for plpgsql and sql.
	Body string
	// ForEachRow: a row-level trigger, whose function runs once per row
	// the statement changes.
	ForEachRow bool
}

// TableRows is one ModifyTable of a plan: the rows it changes of Table.
type TableRows struct {
	Table Table
	// Verb is EXPLAIN's Operation: Insert, Update, Delete or Merge.
	Verb string
	// Upsert: an Insert with ON CONFLICT DO UPDATE.
	Upsert bool
	Rows   int64
}

// FunctionCatalog is an optional extension of Catalog for rule large-dml:
// the bodies of the user functions a statement calls, which may change
// rows of any table.
type FunctionCatalog interface {
	// FunctionBodies lists the overloads, outside pg_catalog and
	// information_schema, of the functions and procedures named (as
	// written: name or schema.name, found by the search_path) that may
	// write (VOLATILE) and whose body pgguard can read (LANGUAGE sql or
	// plpgsql).
	FunctionBodies(ctx context.Context, names []string) ([]Function, bool)
}

// Function is a user function or procedure and its source.
type Function struct {
	Name     string // schema.name
	Language string // sql or plpgsql
	Body     string // pg_proc.prosrc
	// Args are its arguments (all of them, OUT ones too), in order: a
	// name ("" when it has none) and a type as format_type spells it.
	Args []FunctionArg
	// Trigger: it returns trigger.
	Trigger bool
}

// FunctionArg is one argument of a Function.
type FunctionArg struct{ Name, Type string }

// UserCodeCatalog is an optional extension of Catalog: the code a
// statement runs that it does not name, for the lock_timeout pgguard
// sets before a Query (Decision.ChangesLockTimeout).
type UserCodeCatalog interface {
	// UserCode lists the functions that a statement naming relations and
	// calling functions may run: the functions of those names (every
	// overload, found by the search_path when unqualified), and those
	// that the relations' view query, rules, triggers, column defaults
	// and constraints call (pg_depend), through views to any depth. Of
	// pg_catalog's and information_schema's only set_config is listed.
	// The definitions of the relations' rules (a view's query), column
	// defaults, CHECK constraints and trigger conditions are listed as
	// SQL functions whose Body is the definition: a call of a built-in
	// function records no dependency in pg_depend.
	UserCode(ctx context.Context, relations, functions []Table) ([]CodeFunction, bool)
}

// CodeFunction is a function UserCode lists.
type CodeFunction struct {
	Name     string // schema.name
	Language string // pg_language.lanname
	Body     string // pg_proc.prosrc
	// Builtin: in pg_catalog or information_schema.
	Builtin bool
	// Extension: a member of an extension (its code is the extension's).
	Extension bool
	// Definition: no function but a relation's rule, default, CHECK or
	// trigger condition (Name says which), whose Body is its definition.
	Definition bool
}

// CascadeCatalog is an optional extension of Catalog for rules
// drop-column and drop-table: what DROP TYPE, DROP DOMAIN, DROP FUNCTION
// (PROCEDURE, ROUTINE) ... CASCADE drops with the object, as the server's
// pg_depend says before the statement runs.
type CascadeCatalog interface {
	// CascadeDrops lists the relations and the columns of relations a
	// CASCADE drop of the object drops: kind is "type" (a type or a
	// domain) or "function"; args, for a function, its argument types in
	// parentheses, "" for the name alone. ok is false when the catalog
	// cannot say (the object does not exist: the server will say so).
	CascadeDrops(ctx context.Context, kind, name, args string) ([]Dropped, bool)
}

// Dropped is a relation (Column "") or a column of a relation that a
// CASCADE drop drops; Kind is the relation's pg_class.relkind.
type Dropped struct {
	Table  Table
	Column string
	Kind   string
}

// CascadeDependentsSQL is a WITH RECURSIVE query d(classid, objid,
// objsubid) of every object a CASCADE drop of obj (an SQL OID expression
// of an object of catalog class, pg_type or pg_proc) drops with it, as
// the server's findDependentObjects follows pg_depend, to the end: the
// objects that depend on a dropped one (normal, automatic and internal
// dependencies), and the owner a dropped object is an internal part of
// (a generated column whose expression is dropped, the view whose _RETURN
// rule is). Catalogs only.
func CascadeDependentsSQL(obj, class string) string {
	return "WITH RECURSIVE d(classid, objid, objsubid) AS (SELECT 'pg_catalog." + class + "'::pg_catalog.regclass::oid, " + obj + ", 0" +
		" UNION SELECT x.classid, x.objid, x.objsubid FROM d CROSS JOIN LATERAL (" +
		"SELECT p.classid, p.objid, p.objsubid FROM pg_catalog.pg_depend p WHERE p.refclassid = d.classid AND p.refobjid = d.objid" +
		" AND (d.objsubid = 0 OR p.refobjsubid = d.objsubid) AND p.deptype IN ('n', 'a', 'i')" +
		" UNION ALL SELECT p.refclassid, p.refobjid, p.refobjsubid FROM pg_catalog.pg_depend p WHERE p.classid = d.classid AND p.objid = d.objid" +
		" AND (d.objsubid = 0 OR p.objsubid = d.objsubid) AND p.deptype = 'i') x)"
}

// CascadeObjectSQL is the OID of the object a CASCADE drop names, and its
// catalog: kind "type" or "function" (args as for CascadeDrops).
func CascadeObjectSQL(kind string, name Table, args string) (obj, class string) {
	if kind == "function" {
		if args != "" {
			return "pg_catalog.to_regprocedure(" + escapedLiteral(name.String()+args) + ")::oid", "pg_proc"
		}
		return "pg_catalog.to_regproc(" + escapedLiteral(name.String()) + ")::oid", "pg_proc"
	}
	return "pg_catalog.to_regtype(" + escapedLiteral(name.String()) + ")::oid", "pg_type"
}

// CascadeDropsOf lists the objects a DROP TYPE, DROP DOMAIN, DROP
// FUNCTION, PROCEDURE or ROUTINE ... CASCADE names, for CascadeDrops:
// kind, name and args of each. None for any other statement.
func CascadeDropsOf(n *pg_query.Node) (out []CascadeObject) {
	d := n.GetDropStmt()
	if d == nil || d.Behavior != pg_query.DropBehavior_DROP_CASCADE {
		return nil
	}
	switch d.RemoveType {
	case pg_query.ObjectType_OBJECT_TYPE, pg_query.ObjectType_OBJECT_DOMAIN:
		for _, o := range d.Objects {
			if tn := o.GetTypeName(); tn != nil && len(tn.ArrayBounds) == 0 {
				if t := TableOf(rangeVarOfNames(tn.Names)); t.Name != "" {
					out = append(out, CascadeObject{Kind: "type", Name: t})
				}
			}
		}
	case pg_query.ObjectType_OBJECT_FUNCTION, pg_query.ObjectType_OBJECT_PROCEDURE, pg_query.ObjectType_OBJECT_ROUTINE:
		for _, o := range d.Objects {
			ow := o.GetObjectWithArgs()
			t := TableOf(rangeVarOfNames(ow.GetObjname()))
			if t.Name == "" {
				continue
			}
			obj := CascadeObject{Kind: "function", Name: t}
			if !ow.ArgsUnspecified {
				var types []string
				for _, a := range ow.Objargs {
					types = append(types, DeparseType(a.GetTypeName()))
				}
				obj.Args = "(" + strings.Join(types, ", ") + ")"
			}
			out = append(out, obj)
		}
	}
	return out
}

// CascadeObject is an object a DROP ... CASCADE names (CascadeDropsOf).
type CascadeObject struct {
	Kind string // "type" or "function"
	Name Table
	Args string
}

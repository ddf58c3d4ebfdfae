package policy

import (
	"context"
	"time"
)

// Check is what a rule's Check function sees of one statement and reports
// its findings to. A Check is used by one goroutine for one rule.
type Check struct {
	// Ctx bounds catalog lookups.
	Ctx context.Context
	// Session is the session context; never nil, Catalog may be nil.
	Session *Context
	// Version is the server's major version (or the assumed one).
	Version int
	// Text is the statement's original text.
	Text string
	// Nested is true for a statement inside a DO block or a function body:
	// it runs inside the caller's transaction and cannot be rewritten.
	Nested bool
	// Called is true for a statement of the body of a function that the
	// statement being judged calls (judgeCalled): it runs now, as part of
	// that statement.
	Called bool
	// LockTimeout and MaxLockTimeout are the configured lock_timeout and
	// max_lock_timeout.
	LockTimeout, MaxLockTimeout time.Duration
	// LockTimeoutScope is lock_timeout_scope: under ScopeDDL a session may
	// set its own lock_timeout as it likes (the proxy gives each statement
	// that blocks writes the policy's own).
	LockTimeoutScope LockTimeoutScope
	// MaxDMLRows is large_dml.max_rows.
	MaxDMLRows int64

	reports []Report
}

// Report is one problem a rule found.
type Report struct {
	// Table is the table the problem is about. Size-dependent rules must
	// set it: the engine drops reports on new or small tables.
	Table Table
	// Message states the problem in one sentence: the table, the lock,
	// why it matters.
	Message string
	// Detail adds facts (version, catalog answers).
	Detail string
	// Hint is the safe recipe, as runnable SQL with the statement's names;
	// explanations go in SQL comments.
	Hint string
	// Lock is the lock the statement takes on Table.
	Lock string
	// Rewrite is the statement to run instead, when the rule can rewrite
	// it in this session; empty when a rewrite is not legal here.
	Rewrite string
	// Unsized: Table's size does not bound the problem (rule large-dml:
	// the rows a table's rules or triggers change elsewhere, which pgguard
	// could not size), so the engine keeps the report on a small Table.
	Unsized bool
}

// Report records a finding.
func (c *Check) Report(r Report) { c.reports = append(c.reports, r) }

// Partitioned reports whether t is a partitioned table; known is false
// without a catalog answer.
func (c *Check) Partitioned(t Table) (partitioned, known bool) {
	if c.Session.Catalog == nil || t.Name == "" {
		return false, false
	}
	return c.Session.Catalog.IsPartitioned(c.Ctx, t.String())
}

// InvalidIndex reports whether the catalog knows an INVALID index named
// name (in schema, when not empty).
func (c *Check) InvalidIndex(schema, name string) bool {
	if c.Session.Catalog == nil || name == "" {
		return false
	}
	exists, valid, ok := c.Session.Catalog.Index(c.Ctx, Table{Schema: schema, Name: name}.String())
	return ok && exists && !valid
}

// HasValidatedNotNullCheck reports whether the catalog says a validated
// CHECK (column IS NOT NULL) exists on t.
func (c *Check) HasValidatedNotNullCheck(t Table, column string) bool {
	if c.Session.Catalog == nil || t.Name == "" || column == "" {
		return false
	}
	has, ok := c.Session.Catalog.HasValidatedNotNullCheck(c.Ctx, t.String(), column)
	return ok && has
}

// FunctionVolatility asks the catalog for a function's volatility;
// VolatilityUnknown when it cannot say.
func (c *Check) FunctionVolatility(name string) Volatility {
	if c.Session.Catalog == nil || name == "" {
		return VolatilityUnknown
	}
	v, ok := c.Session.Catalog.FunctionVolatility(c.Ctx, name)
	if !ok {
		return VolatilityUnknown
	}
	return v
}

// ColumnType asks the catalog, when it implements ColumnTyper, for the
// SQL type of a column; ok is false otherwise.
func (c *Check) ColumnType(t Table, column string) (string, bool) {
	ct, isTyper := c.Session.Catalog.(ColumnTyper)
	if !isTyper || t.Name == "" || column == "" {
		return "", false
	}
	return ct.ColumnType(c.Ctx, t.String(), column)
}

// IsEnum reports whether the catalog, when it implements EnumCatalog, says
// typ (as ColumnType spells it) is an enum type.
func (c *Check) IsEnum(typ string) bool {
	ec, ok := c.Session.Catalog.(EnumCatalog)
	if !ok || typ == "" {
		return false
	}
	enum, known := ec.IsEnum(c.Ctx, typ)
	return known && enum
}

// EnumCatalog is an optional Catalog extension that tells enum types,
// whose labels ALTER TYPE ... ADD VALUE extends without touching a table.
type EnumCatalog interface {
	IsEnum(ctx context.Context, typ string) (enum, ok bool)
}

// ColumnIndexCatalog is an optional Catalog extension for rule
// alter-column-type: a type change that rewrites no row still rebuilds
// the indexes on the column whose definition PostgreSQL cannot reuse
// (CheckIndexCompatible): those with an expression or a predicate, and
// every one when the operator class or the collation changes.
type ColumnIndexCatalog interface {
	// ColumnIndexes lists the indexes of table that use column: plain
	// ones name it only as a key column, the others (exprs) have an
	// expression or a predicate.
	ColumnIndexes(ctx context.Context, table, column string) (plain, exprs []string, ok bool)
}

// ColumnIndexes asks the catalog, when it implements ColumnIndexCatalog,
// for the indexes on a column; ok is false otherwise.
func (c *Check) ColumnIndexes(t Table, column string) (plain, exprs []string, ok bool) {
	ic, is := c.Session.Catalog.(ColumnIndexCatalog)
	if !is || t.Name == "" || column == "" {
		return nil, nil, false
	}
	return ic.ColumnIndexes(c.Ctx, t.String(), column)
}

// DomainCatalog is an optional Catalog extension for ADD COLUMN: a column
// of a domain type with a constraint (CHECK or NOT NULL, its own or a
// base domain's) makes PostgreSQL rewrite the table to check every row's
// value, and one whose default is volatile makes it write that default
// into every row (ATExecAddColumn).
type DomainCatalog interface {
	// Domain reports whether typ (as SQL writes it) is a domain and, if
	// so, whether it is constrained, its default expression ("" for
	// none) and the type it is based on, domains peeled off (as
	// format_type spells it, with the domain's modifier).
	Domain(ctx context.Context, typ string) (domain, constrained bool, def, base string, ok bool)
}

// Domain asks the catalog, when it implements DomainCatalog, about a
// type; ok is false otherwise.
func (c *Check) Domain(typ string) (domain, constrained bool, def, base string, ok bool) {
	dc, is := c.Session.Catalog.(DomainCatalog)
	if !is || typ == "" {
		return false, false, "", "", false
	}
	return dc.Domain(c.Ctx, typ)
}

// DomainColumn is a column of a domain, or of a domain over it, in a
// table or materialized view: a column whose every value ALTER DOMAIN ...
// ADD CONSTRAINT, VALIDATE CONSTRAINT and SET NOT NULL check.
type DomainColumn struct {
	Table  Table
	Column string
}

// DomainColumnCatalog is an optional Catalog extension for ALTER DOMAIN:
// the columns PostgreSQL checks when a domain gains a constraint
// (validateDomainConstraint, AlterDomainNotNull: every relation with a
// column of the domain or of a domain over it, of which it scans the
// tables and materialized views).
type DomainColumnCatalog interface {
	// DomainColumns lists the columns of the domain typ (as SQL writes
	// it) and of the domains over it, in tables and materialized views,
	// and whether typ is NOT NULL already (SET NOT NULL then does
	// nothing); none when typ is no domain.
	DomainColumns(ctx context.Context, typ string) (cols []DomainColumn, notNull, ok bool)
}

// DomainColumns asks the catalog, when it implements DomainColumnCatalog,
// which columns use the domain typ and whether it is NOT NULL; ok is
// false otherwise.
func (c *Check) DomainColumns(typ string) ([]DomainColumn, bool, bool) {
	dc, is := c.Session.Catalog.(DomainColumnCatalog)
	if !is || typ == "" {
		return nil, false, false
	}
	return dc.DomainColumns(c.Ctx, typ)
}

// ColumnTyper is an optional Catalog extension that names a column's type
// (format_type), so that recipes can spell out a new column's type.
type ColumnTyper interface {
	ColumnType(ctx context.Context, table, column string) (typ string, ok bool)
}

// InTransactionBlock reports whether the statement runs inside a
// transaction (an explicit block, a multi-statement Query or a pipeline,
// or a DO block or function).
func (c *Check) InTransactionBlock() bool {
	return c.Session.InTransaction || !c.Session.Alone || c.Nested
}

// Package pgcatalog answers the policy's questions about existing objects
// (table sizes, index validity, partitioning, column types) with catalog
// queries run through a Querier: pgguard runs them on the session's own
// server connection, at a statement boundary, so they see exactly what the
// session sees and need no credentials of their own.
package pgcatalog

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"

	"github.com/pgguard/pgguard/policy"
)

// Querier runs one query of pgguard's own and returns its rows as text
// (nil for NULL), or ok=false when it failed.
type Querier interface {
	Query(sql string) (rows [][]*string, ok bool)
	// Idle reports whether no transaction block is open.
	Idle() bool
	// ServerVersion is server_version_num (150018 for 15.18).
	ServerVersion() int
}

// GuardedQuerier is a Querier that can also run a query that may fail
// inside an open transaction block without aborting it, and without
// keeping the locks it took: inside a savepoint, rolled back to and
// released. Outside a transaction block it is Query.
type GuardedQuerier interface {
	Querier
	QueryGuarded(sql string) (rows [][]*string, ok bool)
}

// Catalog answers the policy's questions through a Querier.
//
// Inside a transaction block a failing query would abort the client's
// transaction, and a lock taken would be held until its end, so every query
// here reads only the catalogs (no regclass casts that can fail, no
// functions that lock a relation) unless the session is idle.
type Catalog struct {
	Q Querier
	// Memo, when set, keeps the session's answers that change only with
	// DDL (see SessionMemo).
	Memo *SessionMemo
}

var (
	_ policy.Catalog             = (*Catalog)(nil)
	_ policy.ColumnTyper         = (*Catalog)(nil)
	_ policy.ColumnIndexCatalog  = (*Catalog)(nil)
	_ policy.DomainCatalog       = (*Catalog)(nil)
	_ policy.DomainColumnCatalog = (*Catalog)(nil)
	_ policy.EnumCatalog         = (*Catalog)(nil)
	_ policy.MatViewPopulater    = (*Catalog)(nil)
	_ policy.PartitionCatalog    = (*Catalog)(nil)
	_ policy.RelationCatalog     = (*Catalog)(nil)
	_ policy.LockCatalog         = (*Catalog)(nil)
	_ policy.KeyCatalog          = (*Catalog)(nil)
	_ policy.RowCounter          = (*Catalog)(nil)
	_ policy.ConcurrentCatalog   = (*Catalog)(nil)
	_ policy.PreparedCatalog     = (*Catalog)(nil)
)

// relationFilter returns the FROM/WHERE part that finds a relation by a
// possibly qualified name, the way the search_path would.
func relationFilter(name string) string {
	t := policy.ParseTableName(name)
	order := ""
	if t.Schema == "" {
		order = " ORDER BY array_position(current_schemas(true), n.nspname)"
	}
	return " FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE c.relname = " +
		QuoteLiteral(t.Name) + schemaFilter(t.Schema) + order + " LIMIT 1"
}

// schemaFilter restricts n.nspname to schema, or to the search_path when
// the name was not qualified. pg_temp is the session's own temporary
// schema, whatever its real name (pg_temp_3).
func schemaFilter(schema string) string {
	if schema == "pg_temp" {
		return " AND n.oid = pg_catalog.pg_my_temp_schema()"
	}
	if schema != "" {
		return " AND n.nspname = " + QuoteLiteral(schema)
	}
	return " AND n.nspname = ANY (current_schemas(true))"
}

// blank reports whether any name is empty: the policy never asks about an
// empty name (its catalog memo refuses to), and a question about one would
// cost a round trip to learn nothing (a relname that is the empty string).
func blank(names ...string) bool {
	for _, n := range names {
		if strings.TrimSpace(n) == "" {
			return true
		}
	}
	return false
}

func (c *Catalog) query(sql string) ([][]*string, bool) {
	return c.Q.Query(sql)
}

// One returns the single row of a query, or ok=false.
func (c *Catalog) One(sql string) ([]*string, bool) {
	rows, ok := c.query(sql)
	if !ok || len(rows) != 1 {
		return nil, false
	}
	return rows[0], true
}

// oneBool returns the one boolean column of the one row of a query (NULL
// is false), or ok=false.
func (c *Catalog) oneBool(sql string) (bool, bool) {
	row, ok := c.One(sql)
	if !ok || len(row) != 1 {
		return false, false
	}
	return IsTrue(row[0]), true
}

// oneText returns the one column of the one row of a query, or ok=false
// (no row, or NULL).
func (c *Catalog) oneText(sql string) (string, bool) {
	row, ok := c.One(sql)
	if !ok || len(row) != 1 || row[0] == nil {
		return "", false
	}
	return *row[0], true
}

func atoi(p *string) int64 {
	if p == nil {
		return 0
	}
	n, _ := strconv.ParseInt(strings.TrimSpace(*p), 10, 64)
	return n
}

func IsTrue(p *string) bool { return p != nil && *p == "t" }

// inheritanceTreeRows is the CASE branch that counts the rows of a table
// c with inheritance children (not partitions) as those of c and all its
// descendants, as an UPDATE, DELETE or ALTER TABLE of c without ONLY
// reaches them.
const inheritanceTreeRows = "c.relkind = 'r' AND EXISTS (SELECT 1 FROM pg_catalog.pg_inherits i WHERE i.inhparent = c.oid)" +
	" THEN (WITH RECURSIVE tree(oid) AS (SELECT c.oid UNION SELECT i.inhrelid FROM pg_catalog.pg_inherits i JOIN tree ON i.inhparent = tree.oid)" +
	" SELECT COALESCE(sum(greatest(p.reltuples, pg_catalog.pg_stat_get_live_tuples(p.oid), 0)), 0) FROM tree JOIN pg_catalog.pg_class p ON p.oid = tree.oid WHERE p.relkind <> 'p')"

// ownRows are a plain table's own rows, without its inheritance
// children's (what UPDATE ONLY reaches); ok=false for anything else (a
// partitioned table, whose rows are all its partitions').
func (c *Catalog) ownRows(table string) (int64, bool) {
	if blank(table) {
		return 0, false
	}
	row, ok := c.One("SELECT greatest(c.reltuples, pg_catalog.pg_stat_get_live_tuples(c.oid), 0)::bigint, c.relkind = 'r'" + relationFilter(table))
	if !ok || len(row) != 2 || !IsTrue(row[1]) {
		return 0, false
	}
	return atoi(row[0]), true
}

// TableSize: rows are the larger of the planner's estimate and the
// statistics collector's live-tuple count (a table loaded but not yet
// analyzed still shows its rows there); bytes count heap, TOAST and indexes.
func (c *Catalog) TableSize(ctx context.Context, table string) (policy.TableSize, bool) {
	if blank(table) {
		return policy.TableSize{}, false
	}
	bytes := "(c.relpages + COALESCE((SELECT t.relpages FROM pg_catalog.pg_class t WHERE t.oid = c.reltoastrelid), 0)" +
		" + COALESCE((SELECT sum(i.relpages) FROM pg_catalog.pg_index x JOIN pg_catalog.pg_class i ON i.oid = x.indexrelid WHERE x.indrelid = c.oid), 0))::bigint" +
		" * current_setting('block_size')::bigint"
	if c.Q.Idle() {
		// Outside a transaction the brief ACCESS SHARE lock of
		// pg_total_relation_size ends with this query, and the size is exact.
		bytes = "pg_catalog.pg_total_relation_size(c.oid)"
	}
	// A partitioned table holds no rows of its own, and autovacuum never
	// analyzes it (reltuples -1): its rows are its partitions'. A table
	// with inheritance children holds theirs too: an UPDATE, DELETE or
	// ALTER TABLE of it (without ONLY) reaches every one of them.
	rows := "CASE WHEN c.relkind = 'p' THEN (SELECT COALESCE(sum(greatest(p.reltuples, pg_catalog.pg_stat_get_live_tuples(p.oid), 0)), 0)" +
		" FROM pg_catalog.pg_partition_tree(c.oid) t JOIN pg_catalog.pg_class p ON p.oid = t.relid WHERE t.isleaf)" +
		" WHEN " + inheritanceTreeRows + " ELSE greatest(c.reltuples, pg_catalog.pg_stat_get_live_tuples(c.oid), 0) END"
	if c.Q.ServerVersion() > 0 && c.Q.ServerVersion() < 120000 {
		rows = "greatest(c.reltuples, pg_catalog.pg_stat_get_live_tuples(c.oid), 0)" // no pg_partition_tree
	}
	row, ok := c.One("SELECT (" + rows + ")::bigint, " + bytes + ", c.relkind = 'v'" + relationFilter(table))
	if !ok || len(row) != 3 || IsTrue(row[2]) {
		// A view has no rows of its own: changing its rows changes its
		// base tables', whose size the view's does not say.
		return policy.TableSize{}, false
	}
	return policy.TableSize{Rows: atoi(row[0]), Bytes: atoi(row[1])}, true
}

func (c *Catalog) IsPartitioned(ctx context.Context, table string) (bool, bool) {
	if blank(table) {
		return false, false
	}
	// 'I': a partitioned index, whose REINDEX cannot be concurrent either.
	return c.oneBool("SELECT c.relkind IN ('p', 'I')" + relationFilter(table))
}

func (c *Catalog) Index(ctx context.Context, name string) (exists, valid, ok bool) {
	if blank(name) {
		return false, false, false
	}
	rows, ok := c.query("SELECT x.indisvalid" + strings.Replace(relationFilter(name), " WHERE ",
		" JOIN pg_catalog.pg_index x ON x.indexrelid = c.oid WHERE ", 1))
	if !ok {
		return false, false, false
	}
	if len(rows) == 0 {
		return false, false, true
	}
	return true, IsTrue(rows[0][0]), true
}

func (c *Catalog) HasValidatedNotNullCheck(ctx context.Context, table, column string) (bool, bool) {
	if blank(table, column) {
		return false, false
	}
	col := policy.QuoteIdent(column)
	pattern := "^CHECK \\(\\(?" + regexpQuote(col) + " IS NOT NULL\\)?\\)$"
	return c.oneBool("SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_constraint k WHERE k.conrelid = c.oid AND k.contype = 'c' AND k.convalidated" +
		" AND pg_catalog.pg_get_constraintdef(k.oid) ~ " + QuoteLiteral(pattern) + ")" +
		" OR EXISTS (SELECT 1 FROM pg_catalog.pg_attribute a WHERE a.attrelid = c.oid AND a.attname = " + QuoteLiteral(column) +
		" AND a.attnotnull AND NOT a.attisdropped)" + relationFilter(table))
}

func (c *Catalog) HasUniqueIndex(ctx context.Context, table string) (bool, bool) {
	if blank(table) {
		return false, false
	}
	return c.oneBool("SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_index x WHERE x.indrelid = c.oid AND x.indisunique AND x.indisvalid" +
		" AND x.indpred IS NULL AND NOT (0 = ANY (x.indkey::int2[])))" + relationFilter(table))
}

// ColumnType names a column's type as format_type spells it, so recipes
// can declare the new column of a multi-step change.
func (c *Catalog) ColumnType(ctx context.Context, table, column string) (string, bool) {
	if blank(table, column) {
		return "", false
	}
	return c.oneText("SELECT (SELECT pg_catalog.format_type(a.atttypid, a.atttypmod) FROM pg_catalog.pg_attribute a" +
		" WHERE a.attrelid = c.oid AND a.attname = " + QuoteLiteral(column) + " AND NOT a.attisdropped)" + relationFilter(table))
}

// ColumnIndexes lists the indexes of table that use column, as a key
// column only (plain) or in an expression or predicate (exprs), by their
// qualified names. An expression's use of the column is its dependency in
// pg_depend, as ALTER COLUMN ... TYPE finds it.
func (c *Catalog) ColumnIndexes(ctx context.Context, table, column string) ([]string, []string, bool) {
	if blank(table, column) {
		return nil, nil, false
	}
	rows, ok := c.query("WITH rel AS (SELECT c.oid" + relationFilter(table) + ")," +
		" col AS (SELECT a.attrelid, a.attnum FROM pg_catalog.pg_attribute a JOIN rel ON a.attrelid = rel.oid" +
		" WHERE a.attname = " + QuoteLiteral(column) + " AND NOT a.attisdropped)" +
		" SELECT pg_catalog.quote_ident(n.nspname) OPERATOR(pg_catalog.||) '.' OPERATOR(pg_catalog.||) pg_catalog.quote_ident(ic.relname)," +
		" (i.indexprs IS NULL AND i.indpred IS NULL)" +
		" FROM pg_catalog.pg_index i JOIN col ON i.indrelid = col.attrelid" +
		" JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid JOIN pg_catalog.pg_namespace n ON n.oid = ic.relnamespace" +
		" WHERE col.attnum = ANY (i.indkey::pg_catalog.int2[]) OR EXISTS (SELECT 1 FROM pg_catalog.pg_depend d" +
		" WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass AND d.objid = i.indexrelid" +
		" AND d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass AND d.refobjid = col.attrelid AND d.refobjsubid = col.attnum)" +
		" ORDER BY 1")
	if !ok {
		return nil, nil, false
	}
	var plain, exprs []string
	for _, r := range rows {
		if len(r) != 2 || r[0] == nil {
			return nil, nil, false
		}
		if IsTrue(r[1]) {
			plain = append(plain, *r[0])
		} else {
			exprs = append(exprs, *r[0])
		}
	}
	return plain, exprs, true
}

// Domain reports whether typ is a domain, whether it or a domain it is
// based on has a constraint (NOT NULL, or a CHECK in pg_constraint), and
// its default as pg_type keeps it (a domain inherits its base domain's).
// to_regtype gives NULL for an unknown name, never an error.
func (c *Catalog) Domain(ctx context.Context, typ string) (bool, bool, string, string, bool) {
	if blank(typ) {
		return false, false, "", "", false
	}
	row, ok := c.One("WITH RECURSIVE d(oid, base, tmod, nn) AS (" +
		"SELECT t.oid, t.typbasetype, t.typtypmod, t.typnotnull FROM pg_catalog.pg_type t WHERE t.oid = pg_catalog.to_regtype(" + QuoteLiteral(typ) + ") AND t.typtype = 'd'" +
		" UNION ALL SELECT t.oid, t.typbasetype, t.typtypmod, t.typnotnull FROM pg_catalog.pg_type t JOIN d ON t.oid = d.base WHERE t.typtype = 'd')" +
		" SELECT EXISTS (SELECT 1 FROM d), coalesce(bool_or(d.nn), false) OR EXISTS (SELECT 1 FROM pg_catalog.pg_constraint k JOIN d d2 ON k.contypid = d2.oid)," +
		" (SELECT t.typdefault FROM pg_catalog.pg_type t WHERE t.oid = pg_catalog.to_regtype(" + QuoteLiteral(typ) + ") AND t.typtype = 'd')," +
		" (SELECT pg_catalog.format_type(d3.base, d3.tmod) FROM d d3 JOIN pg_catalog.pg_type b ON b.oid = d3.base WHERE b.typtype <> 'd' LIMIT 1)" +
		" FROM d")
	if !ok || len(row) != 4 {
		return false, false, "", "", false
	}
	def, base := "", ""
	if row[2] != nil {
		def = *row[2]
	}
	if row[3] != nil {
		base = *row[3]
	}
	return IsTrue(row[0]), IsTrue(row[1]), def, base, true
}

// DomainColumns lists the columns of tables and materialized views whose
// type is the domain typ or a domain over it, to the end: those ALTER
// DOMAIN ... ADD CONSTRAINT, VALIDATE CONSTRAINT and SET NOT NULL scan
// (get_rels_with_domain keeps relkinds r and m), and the partitioned
// tables at the root of a partition tree: the server holds SHARE on every
// leaf until the last one is scanned, so writes to the partitioned table
// wait for all its rows, which its size counts (TableSize) and a leaf's
// does not. A column of an array,
// composite or range over the domain makes PostgreSQL refuse the
// statement instead, so it is not listed. notNull: typ is NOT NULL
// already (AlterDomainNotNull then does nothing). None when typ is no
// domain.
func (c *Catalog) DomainColumns(ctx context.Context, typ string) ([]policy.DomainColumn, bool, bool) {
	if blank(typ) {
		return nil, false, false
	}
	rows, ok := c.query("WITH RECURSIVE d(t) AS (SELECT t.oid FROM pg_catalog.pg_type t WHERE t.oid = pg_catalog.to_regtype(" + QuoteLiteral(typ) + ") AND t.typtype = 'd'" +
		" UNION SELECT t.oid FROM pg_catalog.pg_type t JOIN d ON t.typbasetype = d.t WHERE t.typtype = 'd')" +
		" SELECT dom.typnotnull, u.nspname, u.relname, u.attname" +
		" FROM (SELECT t.typnotnull FROM pg_catalog.pg_type t WHERE t.oid = pg_catalog.to_regtype(" + QuoteLiteral(typ) + ") AND t.typtype = 'd') dom" +
		" LEFT JOIN (SELECT n.nspname, c.relname, a.attname, a.attnum FROM pg_catalog.pg_attribute a" +
		" JOIN pg_catalog.pg_class c ON c.oid = a.attrelid AND (c.relkind IN ('r', 'm') OR c.relkind = 'p' AND NOT c.relispartition)" +
		" JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace" +
		" WHERE a.atttypid IN (SELECT t FROM d) AND a.attnum > 0 AND NOT a.attisdropped) u ON true" +
		" ORDER BY u.nspname, u.relname, u.attnum")
	if !ok {
		return nil, false, false
	}
	var out []policy.DomainColumn
	notNull := false
	for _, r := range rows {
		if len(r) != 4 {
			return nil, false, false
		}
		notNull = IsTrue(r[0])
		if r[1] == nil || r[2] == nil || r[3] == nil {
			continue // a domain no column uses
		}
		out = append(out, policy.DomainColumn{Table: policy.Table{Schema: *r[1], Name: *r[2]}, Column: *r[3]})
	}
	return out, notNull, true
}

// IsEnum reports whether a type (as format_type spells it) is an enum.
func (c *Catalog) IsEnum(ctx context.Context, typ string) (bool, bool) {
	if blank(typ) {
		return false, false
	}
	return c.oneBool("SELECT t.typtype = 'e' FROM pg_catalog.pg_type t WHERE t.oid = pg_catalog.to_regtype(" + QuoteLiteral(typ) + ")")
}

// MatViewPopulated reports whether a materialized view holds data: REFRESH
// ... CONCURRENTLY fails on one created WITH NO DATA.
func (c *Catalog) MatViewPopulated(ctx context.Context, matview string) (bool, bool) {
	if blank(matview) {
		return false, false
	}
	return c.oneBool("SELECT c.relispopulated AND c.relkind = 'm'" + relationFilter(matview))
}

// PartitionKey returns a partitioned table's strategy and key columns
// ("" for an expression).
func (c *Catalog) PartitionKey(ctx context.Context, table string) (string, []string, bool) {
	if blank(table) {
		return "", nil, false
	}
	row, ok := c.One("SELECT CASE p.partstrat WHEN 'r' THEN 'range' WHEN 'l' THEN 'list' WHEN 'h' THEN 'hash' END," +
		" array_to_string(array(SELECT coalesce(a.attname::text, '') FROM unnest(p.partattrs::int2[]) WITH ORDINALITY k(n, i)" +
		" LEFT JOIN pg_catalog.pg_attribute a ON a.attrelid = p.partrelid AND a.attnum = k.n ORDER BY k.i), chr(31))" +
		strings.Replace(relationFilter(table), " WHERE ", " JOIN pg_catalog.pg_partitioned_table p ON p.partrelid = c.oid WHERE ", 1))
	if !ok || len(row) != 2 || row[0] == nil || row[1] == nil {
		return "", nil, false
	}
	return *row[0], strings.Split(*row[1], "\x1f"), true
}

// HasValidatedCheckOn reports whether table has a validated CHECK
// constraint over every one of columns (it lets ATTACH PARTITION skip its scan).
func (c *Catalog) HasValidatedCheckOn(ctx context.Context, table string, columns []string) (bool, bool) {
	if blank(table) || len(columns) == 0 || blank(columns...) {
		return false, false
	}
	lits := make([]string, len(columns))
	for i, col := range columns {
		lits[i] = QuoteLiteral(col)
	}
	return c.oneBool("SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_constraint k WHERE k.conrelid = c.oid AND k.contype = 'c' AND k.convalidated" +
		" AND k.conkey @> (SELECT array_agg(a.attnum) FROM pg_catalog.pg_attribute a WHERE a.attrelid = c.oid" +
		" AND a.attname = ANY (ARRAY[" + strings.Join(lits, ", ") + "]::text[])))" + relationFilter(table))
}

// Relation resolves a relation name as the server does: current_schemas
// lists the session's temporary schema first (once it exists), then
// pg_catalog and the search_path.
func (c *Catalog) Relation(ctx context.Context, name string) (policy.Relation, bool) {
	if blank(name) {
		return policy.Relation{}, false
	}
	rows, ok := c.query("SELECT n.nspname, c.relpersistence = 't'" + relationFilter(name))
	if !ok || len(rows) > 1 {
		return policy.Relation{}, false
	}
	if len(rows) == 0 {
		return policy.Relation{}, true
	}
	if len(rows[0]) != 2 || rows[0][0] == nil {
		return policy.Relation{}, false
	}
	return policy.Relation{Exists: true, Schema: *rows[0][0], Temporary: IsTrue(rows[0][1])}, true
}

// CreationSchema is current_schema(): the schema an unqualified CREATE
// puts a new relation in.
func (c *Catalog) CreationSchema(ctx context.Context) (string, bool) {
	return c.oneText("SELECT pg_catalog.current_schema()")
}

// HoldsAccessExclusive asks pg_locks whether the session's transaction
// holds an ACCESS EXCLUSIVE lock on table or on what changing its rows
// touches: its partitions and inheritance children, and for a view the
// relations its rules read, recursively. It reads only catalogs and
// pg_locks, so it cannot fail or lock anything.
func (c *Catalog) HoldsAccessExclusive(ctx context.Context, table string) (bool, bool) {
	if blank(table) {
		return false, false
	}
	return c.oneBool("WITH RECURSIVE edge(parent, child) AS (" +
		"SELECT i.inhparent, i.inhrelid FROM pg_catalog.pg_inherits i" +
		" UNION ALL SELECT w.ev_class, d.refobjid FROM pg_catalog.pg_rewrite w JOIN pg_catalog.pg_depend d" +
		" ON d.classid = 'pg_catalog.pg_rewrite'::pg_catalog.regclass AND d.objid = w.oid" +
		" AND d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass AND d.refobjid <> w.ev_class)," +
		" rel(oid) AS (SELECT s.oid FROM (SELECT c.oid" + relationFilter(table) + ") s" +
		" UNION SELECT e.child FROM edge e JOIN rel r ON e.parent = r.oid)" +
		" SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_locks l JOIN rel r ON l.relation = r.oid" +
		" WHERE l.locktype = 'relation' AND l.pid = pg_catalog.pg_backend_pid() AND l.granted" +
		" AND l.mode = 'AccessExclusiveLock'" +
		" AND l.database = (SELECT d.oid FROM pg_catalog.pg_database d WHERE d.datname = pg_catalog.current_database()))")
}

// FunctionVolatility reports the most volatile overload of a function.
func (c *Catalog) FunctionVolatility(ctx context.Context, name string) (policy.Volatility, bool) {
	if blank(name) {
		return policy.VolatilityUnknown, false
	}
	t := policy.ParseTableName(name)
	where := "p.proname = " + QuoteLiteral(t.Name) + schemaFilter(t.Schema)
	v, ok := c.oneText("SELECT max(p.provolatile::text) FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace WHERE " + where)
	if !ok || v == "" {
		return policy.VolatilityUnknown, false
	}
	// 'v' > 's' > 'i' in byte order, so max is the most volatile.
	return policy.Volatility(v[0]), true
}

// EstimateRows asks the planner (EXPLAIN, never executed) how many rows a
// statement touches. Inside a transaction block only through a
// GuardedQuerier (EXPLAIN of a bad statement would abort the client's
// transaction), and only in its SELECT form (selectForm): EXPLAIN of the
// UPDATE or DELETE itself would use up a command id of the client's
// transaction.
func (c *Catalog) EstimateRows(ctx context.Context, sql string) (int64, bool) {
	if blank(sql) {
		return 0, false
	}
	run := c.query
	if !c.Q.Idle() {
		g, ok := c.Q.(GuardedQuerier)
		if !ok {
			return 0, false
		}
		if sql, ok = selectForm(sql); !ok {
			return 0, false
		}
		run = g.QueryGuarded
	}
	explain, ok := ExplainStatement(sql, c.Q.ServerVersion())
	if !ok {
		return 0, false
	}
	rows, ok := run(explain)
	if !ok || len(rows) != 1 || rows[0][0] == nil {
		return 0, false
	}
	return planRows(*rows[0][0])
}

// UniqueKeys lists the columns of table's valid, non-partial unique
// indexes over plain columns (expression indexes are left out). A table
// with inheritance children (not partitions) has none: its indexes do not
// cover the children's rows, which an UPDATE or DELETE of the parent
// changes too (a partitioned table's unique indexes cover every
// partition).
func (c *Catalog) UniqueKeys(ctx context.Context, table string) ([][]string, bool) {
	if blank(table) {
		return nil, false
	}
	rows, ok := c.query("SELECT array_to_string(array(SELECT a.attname::text FROM unnest(x.indkey::int2[]) k(n)" +
		" JOIN pg_catalog.pg_attribute a ON a.attrelid = x.indrelid AND a.attnum = k.n), chr(31))" +
		" FROM (SELECT c.oid, c.relkind" + relationFilter(table) + ") r JOIN pg_catalog.pg_index x ON x.indrelid = r.oid" +
		" WHERE x.indisunique AND x.indisvalid AND x.indpred IS NULL AND x.indexprs IS NULL" +
		" AND NOT (r.relkind = 'r' AND EXISTS (SELECT 1 FROM pg_catalog.pg_inherits i WHERE i.inhparent = r.oid))" +
		" AND NOT EXISTS (" + untrustedEquality + ")" + collationFilter(c.Q.ServerVersion()))
	if !ok {
		return nil, false
	}
	keys := make([][]string, 0, len(rows))
	for _, r := range rows {
		if len(r) == 1 && r[0] != nil && *r[0] != "" {
			keys = append(keys, strings.Split(*r[0], "\x1f"))
		}
	}
	return keys, true
}

// collationFilter leaves out an index x built with another collation than
// a column's nondeterministic one (CREATE UNIQUE INDEX ON t (name COLLATE
// "C") of a case-insensitive column): the index holds 'a' and 'A' apart,
// WHERE name = 'a' matches both. Collations are deterministic before
// PostgreSQL 12 (no collisdeterministic).
func collationFilter(version int) string {
	if version != 0 && version < 120000 {
		return ""
	}
	return " AND NOT EXISTS (SELECT 1 FROM unnest(x.indkey::int2[], x.indcollation::oid[]) k(n, coll)" +
		" JOIN pg_catalog.pg_attribute a ON a.attrelid = x.indrelid AND a.attnum = k.n" +
		" JOIN pg_catalog.pg_collation co ON co.oid = a.attcollation" +
		" WHERE k.coll <> a.attcollation AND NOT co.collisdeterministic)"
}

// collationIndexCase is StaleStatistics' case of a table with a unique
// index that collationFilter leaves out: the planner takes the column for
// unique all the same (it estimates WHERE name = 'a' at one row, whatever
// the case variants hold).
func collationIndexCase(version int) string {
	if version != 0 && version < 120000 {
		return ""
	}
	return " WHEN EXISTS (SELECT 1 FROM pg_catalog.pg_index x WHERE x.indrelid = p.oid AND x.indisunique AND NOT (TRUE" +
		collationFilter(version) + ")) THEN p.oid::regclass::text || ' has a unique index in another collation than its column''s nondeterministic one, which the planner takes for the column''s'"
}

// untrustedEquality finds, for an index x, a column whose comparison by =
// may not be an equality: a user-defined operator named = (outside
// pg_catalog) that takes the column's type, its domain's base type or a
// type it casts to implicitly, and is not the equality (strategy 3) of any
// btree operator family. WHERE id = 'x'::text with such an operator
// (bigint, text) matches whatever it likes, so the unique index on id
// says nothing about the rows it changes. An extension's = (citext,
// hstore) is its btree opfamily's equality and stays trusted.
const untrustedEquality = "SELECT 1 FROM unnest(x.indkey::int2[]) k(n)" +
	" JOIN pg_catalog.pg_attribute a ON a.attrelid = x.indrelid AND a.attnum = k.n" +
	" CROSS JOIN LATERAL (SELECT a.atttypid AS t UNION SELECT ty.typbasetype FROM pg_catalog.pg_type ty WHERE ty.oid = a.atttypid AND ty.typbasetype <> 0" +
	" UNION SELECT c.casttarget FROM pg_catalog.pg_cast c WHERE c.castsource = a.atttypid AND c.castcontext = 'i') ty" +
	" JOIN pg_catalog.pg_operator o ON o.oprname = '=' AND (o.oprleft = ty.t OR o.oprright = ty.t)" +
	" JOIN pg_catalog.pg_namespace ns ON ns.oid = o.oprnamespace AND ns.nspname <> 'pg_catalog'" +
	" WHERE NOT EXISTS (SELECT 1 FROM pg_catalog.pg_amop m JOIN pg_catalog.pg_am am ON am.oid = m.amopmethod AND am.amname = 'btree'" +
	" WHERE m.amopopr = o.oid AND m.amopstrategy = 3)"

// StaleStatistics tells statistics that cannot back an estimate, of table
// or of any of its partitions: never analyzed while holding pages, rows
// modified since the last ANALYZE beyond a fifth of those it counted (and
// 1,000), or twice as many pages on disk as the planner knows of.
func (c *Catalog) StaleStatistics(ctx context.Context, table string) (string, bool) {
	if blank(table) {
		return "", false
	}
	tree := "SELECT c.oid" + relationFilter(table)
	if v := c.Q.ServerVersion(); v == 0 || v >= 120000 {
		// pg_partition_tree lists nothing for a table outside a tree.
		tree = "SELECT r.oid FROM (" + tree + ") r UNION ALL SELECT t.relid FROM (" + tree + ") r, pg_catalog.pg_partition_tree(r.oid) t"
	}
	// pg_relation_size locks the relation briefly: inside a transaction
	// block only in a savepoint, whose end gives the lock up.
	run := c.query
	if !c.Q.Idle() {
		g, ok := c.Q.(GuardedQuerier)
		if !ok {
			return "", false
		}
		run = g.QueryGuarded
	}
	size := "pg_catalog.pg_relation_size(p.oid) / current_setting('block_size')::bigint > 2 * p.relpages + 16"
	rows, ok := run("SELECT string_agg(CASE" +
		" WHEN p.relkind = 'f' THEN p.oid::regclass::text || ' is a foreign table, whose rows are another server''s'" +
		" WHEN p.reltuples < 0 AND (p.relpages > 0 OR pg_catalog.pg_stat_get_live_tuples(p.oid) > 0) THEN p.oid::regclass::text || ' was never analyzed'" +
		" WHEN pg_catalog.pg_stat_get_mod_since_analyze(p.oid) > greatest(p.reltuples, 0) / 5 + 1000 THEN p.oid::regclass::text || ' changed ' || pg_catalog.pg_stat_get_mod_since_analyze(p.oid) || ' rows since its last ANALYZE, which counted ' || greatest(p.reltuples, 0)::bigint" +
		" WHEN " + size + " THEN p.oid::regclass::text || ' grew on disk since its last ANALYZE'" +
		collationIndexCase(c.Q.ServerVersion()) +
		" WHEN p.reltuples > 0 THEN (SELECT p.oid::regclass::text || ' has columns without statistics (added, or SET STATISTICS 0, since its last ANALYZE): ' || string_agg(quote_ident(a.attname), ', ' ORDER BY a.attnum)" +
		" FROM pg_catalog.pg_attribute a WHERE a.attrelid = p.oid AND a.attnum > 0 AND NOT a.attisdropped" +
		" AND pg_catalog.has_column_privilege(p.oid, a.attnum, 'SELECT')" +
		" AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_stats s WHERE s.schemaname = (SELECT n.nspname FROM pg_catalog.pg_namespace n WHERE n.oid = p.relnamespace) AND s.tablename = p.relname AND s.attname = a.attname AND NOT s.inherited)" +
		// A column ANALYZE could not describe (every value too wide)
		// has none either: only a column after the last one with
		// statistics, or one whose target is 0, counts.
		" AND (a.attstattarget = 0 OR NOT EXISTS (SELECT 1 FROM pg_catalog.pg_stats s JOIN pg_catalog.pg_attribute b ON b.attrelid = p.oid AND b.attname = s.attname" +
		" WHERE s.schemaname = (SELECT n.nspname FROM pg_catalog.pg_namespace n WHERE n.oid = p.relnamespace) AND s.tablename = p.relname AND NOT s.inherited AND b.attnum > a.attnum)))" +
		" END, '; ') FROM pg_catalog.pg_class p WHERE p.relkind IN ('r', 'm', 'f') AND p.oid IN (" + tree + ")")
	if !ok || len(rows) != 1 || len(rows[0]) != 1 {
		return "", false
	}
	row := rows[0]
	if row[0] == nil {
		return "", true
	}
	return "the statistics cannot be trusted: " + *row[0], true
}

// CountRows counts the rows of a SELECT up to limit; it reads at most
// limit rows of it. Inside a transaction block it runs only through a
// GuardedQuerier (in a savepoint, so that a failure aborts nothing and no
// lock outlives it).
func (c *Catalog) CountRows(ctx context.Context, sql string, limit int64) (int64, bool) {
	if blank(sql) || limit < 1 {
		return 0, false
	}
	run := c.query
	if !c.Q.Idle() {
		g, ok := c.Q.(GuardedQuerier)
		if !ok {
			return 0, false
		}
		run = g.QueryGuarded
	}
	rows, ok := run("SELECT count(*) FROM (" + sql + " LIMIT " + strconv.FormatInt(limit, 10) + ") AS pgguard_bounded")
	if !ok || len(rows) != 1 || len(rows[0]) != 1 || rows[0][0] == nil {
		return 0, false
	}
	n, err := strconv.ParseInt(*rows[0][0], 10, 64)
	return n, err == nil
}

// explainPlan is the part of EXPLAIN (FORMAT JSON) that says how many rows
// a statement touches.
type explainPlan struct {
	NodeType string        `json:"Node Type"`
	Parent   string        `json:"Parent Relationship"`
	PlanRows float64       `json:"Plan Rows"`
	Plans    []explainPlan `json:"Plans"`
}

// sourceRows is the estimate of the rows a ModifyTable's source plan
// yields: its outer child's, not an InitPlan's or a SubPlan's (SET v =
// (SELECT ...) puts a one-row InitPlan first).
func sourceRows(children []explainPlan) float64 {
	rows := 0.0
	for _, ch := range children {
		if ch.Parent != "InitPlan" && ch.Parent != "SubPlan" && ch.PlanRows > rows {
			rows = ch.PlanRows
		}
	}
	return rows
}

// planRows reads the row estimate out of EXPLAIN (FORMAT JSON). The top
// node of an UPDATE, DELETE or MERGE is a ModifyTable whose own estimate
// is 0 unless it has RETURNING: the rows it changes are those of the plan
// under it.
func planRows(js string) (int64, bool) {
	var out []struct {
		Plan explainPlan `json:"Plan"`
	}
	if err := json.Unmarshal([]byte(js), &out); err != nil || len(out) != 1 {
		return 0, false
	}
	p := out[0].Plan
	rows := p.PlanRows
	if p.NodeType == "ModifyTable" {
		rows = max(rows, sourceRows(p.Plans))
	}
	return int64(rows), true
}

// ExplainStatement returns the EXPLAIN that estimates sql's rows, or false
// when the server cannot plan it: a statement of the extended protocol with
// parameters ($1) can be planned without their values only with
// GENERIC_PLAN (PostgreSQL 16); before that, EXPLAIN would fail and leave
// an ERROR in the server's log for every such statement.
func ExplainStatement(sql string, serverVersion int) (string, bool) {
	if !hasParameters(sql) {
		return "EXPLAIN (FORMAT JSON) " + sql, true
	}
	if serverVersion >= 160000 {
		return "EXPLAIN (GENERIC_PLAN, FORMAT JSON) " + sql, true
	}
	return "", false
}

// HasParameters reports whether sql refers to a parameter ($1), as
// hasParameters does.
func HasParameters(sql string) bool { return hasParameters(sql) }

// hasParameters reports whether sql refers to a parameter ($1). It may
// say so for a "$1" inside a string literal; then the estimate is skipped
// or generic, which is harmless.
func hasParameters(sql string) bool {
	for i := 0; i+1 < len(sql); i++ {
		if sql[i] != '$' || sql[i+1] < '0' || sql[i+1] > '9' {
			continue
		}
		if i == 0 {
			return true
		}
		// In an identifier ("col$1") the $ is part of the name.
		switch p := sql[i-1]; {
		case p == '_', p >= '0' && p <= '9', p >= 'a' && p <= 'z', p >= 'A' && p <= 'Z', p >= 0x80:
			continue
		}
		return true
	}
	return false
}

func regexpQuote(s string) string {
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune(`\.+*?()|[]{}^$`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// QuoteLiteral quotes a string as an SQL literal (standard_conforming_strings
// on, the default since PostgreSQL 9.1; E” is used when a backslash appears).
func QuoteLiteral(s string) string {
	q := "'" + strings.ReplaceAll(s, "'", "''") + "'"
	if strings.Contains(s, `\`) {
		return "E" + strings.ReplaceAll(q, `\`, `\\`)
	}
	return q
}

// SystemCatalog: the relation's table (an index's, or the relation
// itself) is in pg_catalog, or is the TOAST table of one that is.
func (c *Catalog) SystemCatalog(ctx context.Context, relation string) (bool, bool) {
	if blank(relation) {
		return false, false
	}
	return c.oneBool("SELECT hn.nspname = 'pg_catalog' OR EXISTS (SELECT 1 FROM pg_catalog.pg_class o" +
		" JOIN pg_catalog.pg_namespace onn ON onn.oid = o.relnamespace WHERE o.reltoastrelid = h.oid AND onn.nspname = 'pg_catalog')" +
		" FROM (SELECT c.oid" + relationFilter(relation) + ") r" +
		" JOIN pg_catalog.pg_class h ON h.oid = COALESCE((SELECT x.indrelid FROM pg_catalog.pg_index x WHERE x.indexrelid = r.oid), r.oid)" +
		" JOIN pg_catalog.pg_namespace hn ON hn.oid = h.relnamespace")
}

// ExclusionIndexes: the relation itself when an exclusion constraint
// uses it, else the exclusion constraints' indexes of the table and of
// its partitions, found through pg_inherits (pg_partition_tree would
// lock them).
func (c *Catalog) ExclusionIndexes(ctx context.Context, relation string) ([]string, bool) {
	if blank(relation) {
		return nil, false
	}
	rows, ok := c.query("WITH RECURSIVE r AS (SELECT c.oid, c.relkind" + relationFilter(relation) + ")," +
		" t(oid) AS (SELECT r.oid FROM r WHERE r.relkind NOT IN ('i', 'I')" +
		" UNION ALL SELECT i.inhrelid FROM pg_catalog.pg_inherits i JOIN t ON i.inhparent = t.oid" +
		" JOIN pg_catalog.pg_class p ON p.oid = i.inhrelid AND p.relispartition)" +
		" SELECT DISTINCT pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(x.relname)" +
		" FROM pg_catalog.pg_constraint k JOIN pg_catalog.pg_class x ON x.oid = k.conindid" +
		" JOIN pg_catalog.pg_namespace n ON n.oid = x.relnamespace" +
		" WHERE k.contype = 'x' AND (k.conrelid IN (SELECT oid FROM t) OR k.conindid IN (SELECT oid FROM r)) ORDER BY 1")
	if !ok {
		return nil, false
	}
	out := make([]string, 0, len(rows))
	for _, r := range rows {
		if len(r) == 1 && r[0] != nil {
			out = append(out, *r[0])
		}
	}
	return out, true
}

// ExclusionIndexesIn: the exclusion constraints' indexes of the tables and
// materialized views of schema (of every schema when schema is ""), as
// PostgreSQL 15's ReindexMultipleTables picks them (relkind r or m) and
// would skip them: not a temporary table's, which it reindexes without
// CONCURRENTLY, exclusion indexes included.
func (c *Catalog) ExclusionIndexesIn(ctx context.Context, schema string) ([]string, bool) {
	filter := ""
	if schema != "" {
		filter = " AND tn.nspname = " + QuoteLiteral(schema)
	}
	rows, ok := c.query("SELECT DISTINCT pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(x.relname)" +
		" FROM pg_catalog.pg_constraint k JOIN pg_catalog.pg_class t ON t.oid = k.conrelid" +
		" JOIN pg_catalog.pg_namespace tn ON tn.oid = t.relnamespace" +
		" JOIN pg_catalog.pg_class x ON x.oid = k.conindid JOIN pg_catalog.pg_namespace n ON n.oid = x.relnamespace" +
		" WHERE k.contype = 'x' AND t.relkind IN ('r', 'm')" +
		" AND t.relpersistence <> 't'" + filter + " ORDER BY 1")
	if !ok {
		return nil, false
	}
	out := make([]string, 0, len(rows))
	for _, r := range rows {
		if len(r) == 1 && r[0] != nil {
			out = append(out, *r[0])
		}
	}
	return out, true
}

// HasDefaultPartition reads pg_partitioned_table.partdefid.
func (c *Catalog) HasDefaultPartition(ctx context.Context, table string) (bool, bool) {
	if blank(table) {
		return false, false
	}
	return c.oneBool("SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_partitioned_table p WHERE p.partrelid = r.oid AND p.partdefid <> 0)" +
		" FROM (SELECT c.oid" + relationFilter(table) + ") r")
}

// PreparedStatement reads the session's pg_prepared_statements (the
// catalog is asked on the session's own connection).
func (c *Catalog) PreparedStatement(ctx context.Context, name string) (string, []string, bool) {
	if blank(name) {
		return "", nil, false
	}
	row, ok := c.One("SELECT statement, array_to_string(parameter_types::text[], chr(31)) FROM pg_catalog.pg_prepared_statements WHERE name = " + QuoteLiteral(name))
	if !ok || len(row) != 2 || row[0] == nil {
		return "", nil, false
	}
	var types []string
	if row[1] != nil && *row[1] != "" {
		types = strings.Split(*row[1], "\x1f")
	}
	return *row[0], types, true
}

package policy

import (
	"context"
	"encoding/json"
	"strings"
	"sync"

	"github.com/jackc/pgx/v5"
)

// pgCatalog answers Catalog questions from a live server, for the
// verification test. Its queries are a reference for the proxy's catalog.
type pgCatalog struct {
	mu   sync.Mutex // a pgx.Conn is not safe for concurrent use
	conn *pgx.Conn
}

var _ interface {
	Catalog
	ColumnTyper
	EnumCatalog
	PartitionCatalog
	DomainColumnCatalog
} = (*pgCatalog)(nil)

func (c *pgCatalog) DomainColumns(ctx context.Context, typ string) ([]DomainColumn, bool, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var notNull bool
	if err := c.conn.QueryRow(ctx, `SELECT typnotnull FROM pg_type WHERE oid = to_regtype($1) AND typtype = 'd'`, typ).Scan(&notNull); err == pgx.ErrNoRows {
		return nil, false, true
	} else if err != nil {
		return nil, false, false
	}
	rows, err := c.conn.Query(ctx, `WITH RECURSIVE d(t) AS (SELECT to_regtype($1)::oid
		UNION SELECT t.oid FROM pg_type t JOIN d ON t.typbasetype = d.t WHERE t.typtype = 'd')
		SELECT n.nspname, c.relname, a.attname FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid AND c.relkind IN ('r', 'm')
		JOIN pg_namespace n ON n.oid = c.relnamespace WHERE a.atttypid IN (SELECT t FROM d) AND a.attnum > 0 AND NOT a.attisdropped
		ORDER BY 1, 2, a.attnum`, typ)
	if err != nil {
		return nil, false, false
	}
	defer rows.Close()
	var out []DomainColumn
	for rows.Next() {
		var col DomainColumn
		if rows.Scan(&col.Table.Schema, &col.Table.Name, &col.Column) != nil {
			return nil, false, false
		}
		out = append(out, col)
	}
	return out, notNull, rows.Err() == nil
}

func (c *pgCatalog) queryRow(ctx context.Context, sql string, args []any, dest ...any) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.conn.QueryRow(ctx, sql, args...).Scan(dest...) == nil
}

func (c *pgCatalog) TableSize(ctx context.Context, table string) (TableSize, bool) {
	var s TableSize
	ok := c.queryRow(ctx, `SELECT greatest(reltuples, 0)::bigint, pg_total_relation_size(oid) FROM pg_class WHERE oid = to_regclass($1)`,
		[]any{table}, &s.Rows, &s.Bytes)
	return s, ok
}

func (c *pgCatalog) HasValidatedNotNullCheck(ctx context.Context, table, column string) (bool, bool) {
	var has bool
	ok := c.queryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_constraint WHERE conrelid = to_regclass($1) AND contype = 'c'
		AND convalidated AND pg_get_constraintdef(oid) = 'CHECK ((' || quote_ident($2) || ' IS NOT NULL))')`,
		[]any{table, column}, &has)
	return has, ok
}

func (c *pgCatalog) IsPartitioned(ctx context.Context, table string) (bool, bool) {
	var p bool
	// 'I': an index of a partitioned table (DROP INDEX CONCURRENTLY refuses it)
	ok := c.queryRow(ctx, `SELECT relkind IN ('p', 'I') FROM pg_class WHERE oid = to_regclass($1)`, []any{table}, &p)
	return p, ok
}

func (c *pgCatalog) Index(ctx context.Context, name string) (bool, bool, bool) {
	var exists, valid bool
	ok := c.queryRow(ctx, `SELECT count(*) > 0, coalesce(bool_and(indisvalid), false) FROM pg_index WHERE indexrelid = to_regclass($1)`,
		[]any{name}, &exists, &valid)
	return exists, valid, ok
}

func (c *pgCatalog) HasUniqueIndex(ctx context.Context, table string) (bool, bool) {
	var has bool
	// REFRESH ... CONCURRENTLY needs a unique index on plain columns
	// covering every row: no expression, no WHERE.
	ok := c.queryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_index WHERE indrelid = to_regclass($1) AND indisunique AND indisvalid
		AND indexprs IS NULL AND indpred IS NULL)`,
		[]any{table}, &has)
	return has, ok
}

func (c *pgCatalog) FunctionVolatility(ctx context.Context, name string) (Volatility, bool) {
	schema, fn, qualified := strings.Cut(name, ".")
	if !qualified {
		schema, fn = "", name
	}
	var v string
	ok := c.queryRow(ctx, `SELECT provolatile::text FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
		WHERE proname = $2 AND ($1 = '' OR nspname = $1) ORDER BY provolatile DESC LIMIT 1`, []any{schema, fn}, &v)
	if !ok || v == "" {
		return VolatilityUnknown, false
	}
	return Volatility(v[0]), true
}

// EstimateRows runs EXPLAIN (never the statement): the rows of the plan
// under ModifyTable, which itself reports 0 without RETURNING.
func (c *pgCatalog) EstimateRows(ctx context.Context, sql string) (int64, bool) {
	var plan []struct {
		Plan struct {
			NodeType string  `json:"Node Type"`
			Rows     float64 `json:"Plan Rows"`
			Plans    []struct {
				Rows float64 `json:"Plan Rows"`
			}
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	var raw []byte
	if err := c.conn.QueryRow(ctx, "EXPLAIN (FORMAT JSON) "+sql).Scan(&raw); err != nil {
		return 0, false
	}
	if err := json.Unmarshal(raw, &plan); err != nil || len(plan) == 0 {
		return 0, false
	}
	p := plan[0].Plan
	if p.NodeType == "ModifyTable" && len(p.Plans) > 0 {
		return int64(p.Plans[0].Rows), true
	}
	return int64(p.Rows), true
}

func (c *pgCatalog) MatViewPopulated(ctx context.Context, matview string) (bool, bool) {
	var p bool
	ok := c.queryRow(ctx, `SELECT relispopulated FROM pg_class WHERE oid = to_regclass($1) AND relkind = 'm'`, []any{matview}, &p)
	return p, ok
}

func (c *pgCatalog) ColumnType(ctx context.Context, table, column string) (string, bool) {
	var typ string
	ok := c.queryRow(ctx, `SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = to_regclass($1) AND attname = $2 AND NOT attisdropped`,
		[]any{table, column}, &typ)
	return typ, ok
}

func (c *pgCatalog) IsEnum(ctx context.Context, typ string) (bool, bool) {
	var e bool
	ok := c.queryRow(ctx, `SELECT typtype = 'e' FROM pg_type WHERE oid = to_regtype($1)`, []any{typ}, &e)
	return e, ok
}

func (c *pgCatalog) PartitionKey(ctx context.Context, table string) (string, []string, bool) {
	var strategy string
	var cols []string
	ok := c.queryRow(ctx, `SELECT CASE p.partstrat WHEN 'r' THEN 'range' WHEN 'l' THEN 'list' WHEN 'h' THEN 'hash' END,
		array(SELECT coalesce(a.attname::text, '') FROM unnest(p.partattrs::int2[]) WITH ORDINALITY k(n, i)
			LEFT JOIN pg_attribute a ON a.attrelid = p.partrelid AND a.attnum = k.n ORDER BY k.i)
		FROM pg_partitioned_table p WHERE p.partrelid = to_regclass($1)`, []any{table}, &strategy, &cols)
	return strategy, cols, ok
}

func (c *pgCatalog) HasValidatedCheckOn(ctx context.Context, table string, columns []string) (bool, bool) {
	var has bool
	ok := c.queryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_constraint WHERE conrelid = to_regclass($1) AND contype = 'c' AND convalidated
		AND conkey @> (SELECT array_agg(attnum) FROM pg_attribute WHERE attrelid = to_regclass($1) AND attname = ANY ($2::text[])))`,
		[]any{table, columns}, &has)
	return has, ok
}

var _ ConcurrentCatalog = (*pgCatalog)(nil)

func (c *pgCatalog) SystemCatalog(ctx context.Context, relation string) (bool, bool) {
	var is bool
	ok := c.queryRow(ctx, `SELECT h.relnamespace = 'pg_catalog'::regnamespace
			OR EXISTS (SELECT 1 FROM pg_class o WHERE o.reltoastrelid = h.oid AND o.relnamespace = 'pg_catalog'::regnamespace)
		FROM pg_class h WHERE h.oid = coalesce((SELECT indrelid FROM pg_index WHERE indexrelid = to_regclass($1)), to_regclass($1))`,
		[]any{relation}, &is)
	return is, ok
}

func (c *pgCatalog) ExclusionIndexes(ctx context.Context, relation string) ([]string, bool) {
	var idx []string
	ok := c.queryRow(ctx, `SELECT coalesce(array_agg(conindid::regclass::text ORDER BY 1), '{}') FROM pg_constraint
		WHERE contype = 'x' AND (conindid = to_regclass($1) OR conrelid IN (SELECT relid FROM pg_partition_tree(to_regclass($1))))`,
		[]any{relation}, &idx)
	return idx, ok
}

func (c *pgCatalog) ExclusionIndexesIn(ctx context.Context, schema string) ([]string, bool) {
	var idx []string
	ok := c.queryRow(ctx, `SELECT coalesce(array_agg(k.conindid::regclass::text ORDER BY 1), '{}') FROM pg_constraint k
		JOIN pg_class t ON t.oid = k.conrelid
		WHERE k.contype = 'x' AND t.relkind IN ('r', 'm') AND t.relpersistence <> 't'
		AND ($1 = '' OR t.relnamespace::regnamespace::text = $1)`,
		[]any{schema}, &idx)
	return idx, ok
}

func (c *pgCatalog) HasDefaultPartition(ctx context.Context, table string) (bool, bool) {
	var has bool
	ok := c.queryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_partitioned_table WHERE partrelid = to_regclass($1) AND partdefid <> 0)`,
		[]any{table}, &has)
	return has, ok
}

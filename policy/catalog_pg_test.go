package policy

import (
	"context"
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
} = (*pgCatalog)(nil)

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
	ok := c.queryRow(ctx, `SELECT relkind = 'p' FROM pg_class WHERE oid = to_regclass($1)`, []any{table}, &p)
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
	ok := c.queryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_index WHERE indrelid = to_regclass($1) AND indisunique AND indisvalid)`,
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

func (c *pgCatalog) EstimateRows(context.Context, string) (int64, bool) { return 0, false }

func (c *pgCatalog) ColumnType(ctx context.Context, table, column string) (string, bool) {
	var typ string
	ok := c.queryRow(ctx, `SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = to_regclass($1) AND attname = $2 AND NOT attisdropped`,
		[]any{table, column}, &typ)
	return typ, ok
}

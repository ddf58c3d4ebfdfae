package policy

import "context"

// ConcurrentCatalog is an optional Catalog extension: what makes
// PostgreSQL refuse the CONCURRENTLY form of a statement, or run it and
// quietly skip part of the work (PostgreSQL 15, checked on the server by
// TestConcurrentlyWhereServerAllows):
//
//   - REINDEX ... CONCURRENTLY of a system catalog, its TOAST table or one
//     of their indexes: ERROR 0A000; REINDEX SCHEMA pg_catalog
//     CONCURRENTLY skips every table with a WARNING.
//   - REINDEX INDEX CONCURRENTLY of an index behind an exclusion
//     constraint: ERROR 0A000; REINDEX TABLE CONCURRENTLY skips such
//     indexes (of the table and of its partitions) with a WARNING.
//   - REINDEX SCHEMA and REINDEX DATABASE ... CONCURRENTLY skip the
//     indexes of exclusion constraints of every table they rebuild, with
//     a WARNING each; REINDEX DATABASE CONCURRENTLY also skips every
//     system catalog ("skipping all"), which REINDEX DATABASE rebuilds
//     before PostgreSQL 16.
//   - DETACH PARTITION ... CONCURRENTLY of a table with a DEFAULT
//     partition: ERROR 55000.
type ConcurrentCatalog interface {
	// SystemCatalog reports whether relation (a table, or the table of an
	// index) is a system catalog or a catalog's TOAST table.
	SystemCatalog(ctx context.Context, relation string) (is bool, ok bool)
	// ExclusionIndexes lists the indexes behind exclusion constraints
	// that a REINDEX of relation rebuilds: relation itself when it is
	// one, else those of the table relation and of its partitions.
	ExclusionIndexes(ctx context.Context, relation string) (indexes []string, ok bool)
	// ExclusionIndexesIn lists the indexes behind exclusion constraints
	// of the tables and materialized views that REINDEX SCHEMA schema
	// rebuilds, or, when schema is "", REINDEX DATABASE, and skips in
	// their CONCURRENTLY form: not temporary tables', which PostgreSQL
	// reindexes without CONCURRENTLY then.
	ExclusionIndexesIn(ctx context.Context, schema string) (indexes []string, ok bool)
	// HasDefaultPartition reports whether table is a partitioned table
	// with a DEFAULT partition.
	HasDefaultPartition(ctx context.Context, table string) (has bool, ok bool)
}

// concurrentCatalog returns the session's ConcurrentCatalog, or nil.
func (c *Check) concurrentCatalog(t Table) ConcurrentCatalog {
	if c.Session.Catalog == nil || t.Name == "" {
		return nil
	}
	cc, _ := c.Session.Catalog.(ConcurrentCatalog)
	return cc
}

// SystemCatalog reports whether the catalog says t (a table or an index)
// is a system catalog's.
func (c *Check) SystemCatalog(t Table) bool {
	cc := c.concurrentCatalog(t)
	if cc == nil {
		return false
	}
	is, ok := cc.SystemCatalog(c.Ctx, t.String())
	return ok && is
}

// ExclusionIndexes returns the indexes behind exclusion constraints that
// a REINDEX of t rebuilds, as far as the catalog knows.
func (c *Check) ExclusionIndexes(t Table) []string {
	cc := c.concurrentCatalog(t)
	if cc == nil {
		return nil
	}
	idx, ok := cc.ExclusionIndexes(c.Ctx, t.String())
	if !ok {
		return nil
	}
	return idx
}

// HasDefaultPartition reports whether the catalog says t has a DEFAULT
// partition; known is false without its answer.
func (c *Check) HasDefaultPartition(t Table) (has, known bool) {
	cc := c.concurrentCatalog(t)
	if cc == nil {
		return false, false
	}
	return cc.HasDefaultPartition(c.Ctx, t.String())
}

// ExclusionIndexesIn returns the indexes behind exclusion constraints that
// REINDEX SCHEMA schema (REINDEX DATABASE when schema is "") rebuilds, as
// far as the catalog knows.
func (c *Check) ExclusionIndexesIn(schema string) []string {
	if c.Session.Catalog == nil {
		return nil
	}
	cc, _ := c.Session.Catalog.(ConcurrentCatalog)
	if cc == nil {
		return nil
	}
	idx, ok := cc.ExclusionIndexesIn(c.Ctx, schema)
	if !ok {
		return nil
	}
	return idx
}

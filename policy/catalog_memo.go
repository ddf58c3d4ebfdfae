package policy

import (
	"context"
	"strconv"
	"strings"
)

// memoCatalog answers each question about a relation at most once per
// statement: several rules often ask about the same table (create-index's
// partition check, the size check of every size-dependent rule), and with
// the proxy's catalog each question is a round trip on the session's
// connection. It never asks about an empty name: that is a rule's bug
// (a statement without the relation it looked for), and the answer would
// be "unknown" anyway.
//
// It implements every optional extension; where the wrapped catalog does
// not, the answer is ok=false, which rules treat as they treat a catalog
// without the extension.
type memoCatalog struct {
	inner   Catalog
	answers map[string]memoAnswer
	// onEmpty, when set (by tests), hears of every question about an
	// empty name.
	onEmpty func(method string)
}

type memoAnswer struct {
	a, b bool
	n    int64
	s    string
	list []string
	more []string
	size TableSize
	eff  Effects
	fns  []Function
	cols []DomainColumn
	drop []Dropped
	ok   bool
}

var (
	_ Catalog             = (*memoCatalog)(nil)
	_ ColumnTyper         = (*memoCatalog)(nil)
	_ ColumnIndexCatalog  = (*memoCatalog)(nil)
	_ DomainCatalog       = (*memoCatalog)(nil)
	_ DomainColumnCatalog = (*memoCatalog)(nil)
	_ EnumCatalog         = (*memoCatalog)(nil)
	_ MatViewPopulater    = (*memoCatalog)(nil)
	_ PartitionCatalog    = (*memoCatalog)(nil)
	_ SizeProvenance      = (*memoCatalog)(nil)
)

// SizesFrom passes on where the wrapped catalog's sizes come from ("" for
// a catalog of the session's own database).
func (m *memoCatalog) SizesFrom(ctx context.Context, table string) string {
	sp, ok := m.inner.(SizeProvenance)
	if m.empty("SizesFrom", table) || !ok {
		return ""
	}
	return m.ask([]string{"SizesFrom", table}, func() (a memoAnswer) {
		a.s, a.ok = sp.SizesFrom(ctx, table), true
		return a
	}).s
}

// Lacks passes SourceLacker's question to the inner catalog (false when
// it cannot answer it); its answer is the sizes file's, which does not
// change during a statement.
func (m *memoCatalog) Lacks(ctx context.Context, name string) bool {
	sl, ok := m.inner.(SourceLacker)
	return ok && sl.Lacks(ctx, name)
}

func newMemoCatalog(inner Catalog, onEmpty func(string)) *memoCatalog {
	return &memoCatalog{inner: inner, answers: map[string]memoAnswer{}, onEmpty: onEmpty}
}

// empty reports whether any of names is empty, and tells onEmpty.
func (m *memoCatalog) empty(method string, names ...string) bool {
	for _, n := range names {
		if strings.TrimSpace(n) == "" {
			if m.onEmpty != nil {
				m.onEmpty(method)
			}
			return true
		}
	}
	return false
}

// ask returns the memoised answer to question (its method and arguments),
// asking the wrapped catalog when there is none yet.
func (m *memoCatalog) ask(question []string, answer func() memoAnswer) memoAnswer {
	key := strings.Join(question, "\x00")
	if a, ok := m.answers[key]; ok {
		return a
	}
	a := answer()
	m.answers[key] = a
	return a
}

func (m *memoCatalog) TableSize(ctx context.Context, table string) (TableSize, bool) {
	if m.empty("TableSize", table) {
		return TableSize{}, false
	}
	a := m.ask([]string{"TableSize", table}, func() (a memoAnswer) {
		a.size, a.ok = m.inner.TableSize(ctx, table)
		return a
	})
	return a.size, a.ok
}

func (m *memoCatalog) HasValidatedNotNullCheck(ctx context.Context, table, column string) (bool, bool) {
	if m.empty("HasValidatedNotNullCheck", table, column) {
		return false, false
	}
	a := m.ask([]string{"HasValidatedNotNullCheck", table, column}, func() (a memoAnswer) {
		a.a, a.ok = m.inner.HasValidatedNotNullCheck(ctx, table, column)
		return a
	})
	return a.a, a.ok
}

func (m *memoCatalog) IsPartitioned(ctx context.Context, table string) (bool, bool) {
	if m.empty("IsPartitioned", table) {
		return false, false
	}
	a := m.ask([]string{"IsPartitioned", table}, func() (a memoAnswer) {
		a.a, a.ok = m.inner.IsPartitioned(ctx, table)
		return a
	})
	return a.a, a.ok
}

func (m *memoCatalog) Index(ctx context.Context, name string) (exists, valid, ok bool) {
	if m.empty("Index", name) {
		return false, false, false
	}
	a := m.ask([]string{"Index", name}, func() (a memoAnswer) {
		a.a, a.b, a.ok = m.inner.Index(ctx, name)
		return a
	})
	return a.a, a.b, a.ok
}

func (m *memoCatalog) HasUniqueIndex(ctx context.Context, table string) (bool, bool) {
	if m.empty("HasUniqueIndex", table) {
		return false, false
	}
	a := m.ask([]string{"HasUniqueIndex", table}, func() (a memoAnswer) {
		a.a, a.ok = m.inner.HasUniqueIndex(ctx, table)
		return a
	})
	return a.a, a.ok
}

func (m *memoCatalog) FunctionVolatility(ctx context.Context, name string) (Volatility, bool) {
	if m.empty("FunctionVolatility", name) {
		return VolatilityUnknown, false
	}
	a := m.ask([]string{"FunctionVolatility", name}, func() (a memoAnswer) {
		var v Volatility
		v, a.ok = m.inner.FunctionVolatility(ctx, name)
		a.n = int64(v)
		return a
	})
	return Volatility(a.n), a.ok
}

func (m *memoCatalog) EstimateRows(ctx context.Context, sql string) (int64, bool) {
	if m.empty("EstimateRows", sql) {
		return 0, false
	}
	a := m.ask([]string{"EstimateRows", sql}, func() (a memoAnswer) {
		a.n, a.ok = m.inner.EstimateRows(ctx, sql)
		return a
	})
	return a.n, a.ok
}

func (m *memoCatalog) ColumnType(ctx context.Context, table, column string) (string, bool) {
	ct, ok := m.inner.(ColumnTyper)
	if m.empty("ColumnType", table, column) || !ok {
		return "", false
	}
	a := m.ask([]string{"ColumnType", table, column}, func() (a memoAnswer) {
		a.s, a.ok = ct.ColumnType(ctx, table, column)
		return a
	})
	return a.s, a.ok
}

func (m *memoCatalog) ColumnIndexes(ctx context.Context, table, column string) ([]string, []string, bool) {
	ic, ok := m.inner.(ColumnIndexCatalog)
	if m.empty("ColumnIndexes", table, column) || !ok {
		return nil, nil, false
	}
	a := m.ask([]string{"ColumnIndexes", table, column}, func() (a memoAnswer) {
		a.list, a.more, a.ok = ic.ColumnIndexes(ctx, table, column)
		return a
	})
	return a.list, a.more, a.ok
}

func (m *memoCatalog) Domain(ctx context.Context, typ string) (bool, bool, string, string, bool) {
	dc, ok := m.inner.(DomainCatalog)
	if m.empty("Domain", typ) || !ok {
		return false, false, "", "", false
	}
	a := m.ask([]string{"Domain", typ}, func() (a memoAnswer) {
		var base string
		a.a, a.b, a.s, base, a.ok = dc.Domain(ctx, typ)
		a.more = []string{base}
		return a
	})
	base := ""
	if len(a.more) == 1 {
		base = a.more[0]
	}
	return a.a, a.b, a.s, base, a.ok
}

func (m *memoCatalog) IsEnum(ctx context.Context, typ string) (bool, bool) {
	ec, ok := m.inner.(EnumCatalog)
	if m.empty("IsEnum", typ) || !ok {
		return false, false
	}
	a := m.ask([]string{"IsEnum", typ}, func() (a memoAnswer) {
		a.b, a.ok = ec.IsEnum(ctx, typ)
		return a
	})
	return a.b, a.ok
}

func (m *memoCatalog) MatViewPopulated(ctx context.Context, matview string) (bool, bool) {
	p, ok := m.inner.(MatViewPopulater)
	if m.empty("MatViewPopulated", matview) || !ok {
		return false, false
	}
	a := m.ask([]string{"MatViewPopulated", matview}, func() (a memoAnswer) {
		a.a, a.ok = p.MatViewPopulated(ctx, matview)
		return a
	})
	return a.a, a.ok
}

func (m *memoCatalog) PartitionKey(ctx context.Context, table string) (string, []string, bool) {
	pc, ok := m.inner.(PartitionCatalog)
	if m.empty("PartitionKey", table) || !ok {
		return "", nil, false
	}
	a := m.ask([]string{"PartitionKey", table}, func() (a memoAnswer) {
		a.s, a.list, a.ok = pc.PartitionKey(ctx, table)
		return a
	})
	return a.s, a.list, a.ok
}

func (m *memoCatalog) HasValidatedCheckOn(ctx context.Context, table string, columns []string) (bool, bool) {
	pc, ok := m.inner.(PartitionCatalog)
	if m.empty("HasValidatedCheckOn", append([]string{table}, columns...)...) || len(columns) == 0 || !ok {
		return false, false
	}
	a := m.ask(append([]string{"HasValidatedCheckOn", table}, columns...), func() (a memoAnswer) {
		a.a, a.ok = pc.HasValidatedCheckOn(ctx, table, columns)
		return a
	})
	return a.a, a.ok
}

var (
	_ RelationCatalog = (*memoCatalog)(nil)
	_ LockCatalog     = (*memoCatalog)(nil)
)

func (m *memoCatalog) Relation(ctx context.Context, name string) (Relation, bool) {
	rc, ok := m.inner.(RelationCatalog)
	if m.empty("Relation", name) || !ok {
		return Relation{}, false
	}
	a := m.ask([]string{"Relation", name}, func() (a memoAnswer) {
		var r Relation
		r, a.ok = rc.Relation(ctx, name)
		a.a, a.b, a.s = r.Exists, r.Temporary, r.Schema
		return a
	})
	return Relation{Exists: a.a, Temporary: a.b, Schema: a.s}, a.ok
}

func (m *memoCatalog) CreationSchema(ctx context.Context) (string, bool) {
	rc, ok := m.inner.(RelationCatalog)
	if !ok {
		return "", false
	}
	a := m.ask([]string{"CreationSchema"}, func() (a memoAnswer) {
		a.s, a.ok = rc.CreationSchema(ctx)
		return a
	})
	return a.s, a.ok
}

// HoldsAccessExclusive is not memoised: a statement asks it once, and the
// answer changes with every statement.
func (m *memoCatalog) HoldsAccessExclusive(ctx context.Context, table string) (bool, bool) {
	lc, ok := m.inner.(LockCatalog)
	if m.empty("HoldsAccessExclusive", table) || !ok {
		return false, false
	}
	return lc.HoldsAccessExclusive(ctx, table)
}

var (
	_ KeyCatalog = (*memoCatalog)(nil)
	_ RowCounter = (*memoCatalog)(nil)
)

func (m *memoCatalog) UniqueKeys(ctx context.Context, table string) ([][]string, bool) {
	kc, ok := m.inner.(KeyCatalog)
	if m.empty("UniqueKeys", table) || !ok {
		return nil, false
	}
	a := m.ask([]string{"UniqueKeys", table}, func() (a memoAnswer) {
		var keys [][]string
		keys, a.ok = kc.UniqueKeys(ctx, table)
		// One key per entry, its columns joined by a byte no name holds.
		for _, k := range keys {
			a.list = append(a.list, strings.Join(k, "\x00"))
		}
		return a
	})
	if !a.ok {
		return nil, false
	}
	keys := make([][]string, len(a.list))
	for i, k := range a.list {
		keys[i] = strings.Split(k, "\x00")
	}
	return keys, true
}

func (m *memoCatalog) StaleStatistics(ctx context.Context, table string) (string, bool) {
	rc, ok := m.inner.(RowCounter)
	if m.empty("StaleStatistics", table) || !ok {
		return "", false
	}
	a := m.ask([]string{"StaleStatistics", table}, func() (a memoAnswer) {
		a.s, a.ok = rc.StaleStatistics(ctx, table)
		return a
	})
	return a.s, a.ok
}

func (m *memoCatalog) CountRows(ctx context.Context, sql string, limit int64) (int64, bool) {
	rc, ok := m.inner.(RowCounter)
	if m.empty("CountRows", sql) || !ok {
		return 0, false
	}
	a := m.ask([]string{"CountRows", sql, strconv.FormatInt(limit, 10)}, func() (a memoAnswer) {
		a.n, a.ok = rc.CountRows(ctx, sql, limit)
		return a
	})
	return a.n, a.ok
}

var _ ConcurrentCatalog = (*memoCatalog)(nil)

func (m *memoCatalog) SystemCatalog(ctx context.Context, relation string) (bool, bool) {
	cc, ok := m.inner.(ConcurrentCatalog)
	if m.empty("SystemCatalog", relation) || !ok {
		return false, false
	}
	a := m.ask([]string{"SystemCatalog", relation}, func() (a memoAnswer) {
		a.a, a.ok = cc.SystemCatalog(ctx, relation)
		return a
	})
	return a.a, a.ok
}

func (m *memoCatalog) ExclusionIndexes(ctx context.Context, relation string) ([]string, bool) {
	cc, ok := m.inner.(ConcurrentCatalog)
	if m.empty("ExclusionIndexes", relation) || !ok {
		return nil, false
	}
	a := m.ask([]string{"ExclusionIndexes", relation}, func() (a memoAnswer) {
		a.list, a.ok = cc.ExclusionIndexes(ctx, relation)
		return a
	})
	return a.list, a.ok
}

// ExclusionIndexesIn: schema "" is a question about the whole database,
// not an empty name.
func (m *memoCatalog) ExclusionIndexesIn(ctx context.Context, schema string) ([]string, bool) {
	cc, ok := m.inner.(ConcurrentCatalog)
	if !ok || schema != "" && m.empty("ExclusionIndexesIn", schema) {
		return nil, false
	}
	a := m.ask([]string{"ExclusionIndexesIn", schema}, func() (a memoAnswer) {
		a.list, a.ok = cc.ExclusionIndexesIn(ctx, schema)
		return a
	})
	return a.list, a.ok
}

func (m *memoCatalog) HasDefaultPartition(ctx context.Context, table string) (bool, bool) {
	cc, ok := m.inner.(ConcurrentCatalog)
	if m.empty("HasDefaultPartition", table) || !ok {
		return false, false
	}
	a := m.ask([]string{"HasDefaultPartition", table}, func() (a memoAnswer) {
		a.a, a.ok = cc.HasDefaultPartition(ctx, table)
		return a
	})
	return a.a, a.ok
}

var _ PreparedCatalog = (*memoCatalog)(nil)

func (m *memoCatalog) PreparedStatement(ctx context.Context, name string) (string, []string, bool) {
	pc, ok := m.inner.(PreparedCatalog)
	if m.empty("PreparedStatement", name) || !ok {
		return "", nil, false
	}
	a := m.ask([]string{"PreparedStatement", name}, func() (a memoAnswer) {
		a.s, a.list, a.ok = pc.PreparedStatement(ctx, name)
		return a
	})
	return a.s, a.list, a.ok
}

var _ EffectsCatalog = (*memoCatalog)(nil)

func (m *memoCatalog) TableEffects(ctx context.Context, table, event string) (Effects, bool) {
	ec, ok := m.inner.(EffectsCatalog)
	if m.empty("TableEffects", table, event) || !ok {
		return Effects{}, false
	}
	a := m.ask([]string{"TableEffects", table, event}, func() (a memoAnswer) {
		a.eff, a.ok = ec.TableEffects(ctx, table, event)
		return a
	})
	return a.eff, a.ok
}

func (m *memoCatalog) EstimateChanges(ctx context.Context, sql string) ([]TableRows, bool) {
	ec, ok := m.inner.(EffectsCatalog)
	if m.empty("EstimateChanges", sql) || !ok {
		return nil, false
	}
	return ec.EstimateChanges(ctx, sql)
}

var _ FunctionCatalog = (*memoCatalog)(nil)

func (m *memoCatalog) FunctionBodies(ctx context.Context, names []string) ([]Function, bool) {
	fc, ok := m.inner.(FunctionCatalog)
	if !ok || m.empty("FunctionBodies", names...) {
		return nil, false
	}
	a := m.ask(append([]string{"FunctionBodies"}, names...), func() (a memoAnswer) {
		a.fns, a.ok = fc.FunctionBodies(ctx, names)
		return a
	})
	return a.fns, a.ok
}

var _ UserCodeCatalog = (*memoCatalog)(nil)

func (m *memoCatalog) UserCode(ctx context.Context, relations, functions []Table) ([]CodeFunction, bool) {
	uc, ok := m.inner.(UserCodeCatalog)
	if !ok {
		return nil, false
	}
	return uc.UserCode(ctx, relations, functions)
}

func (m *memoCatalog) DomainColumns(ctx context.Context, typ string) ([]DomainColumn, bool, bool) {
	dc, ok := m.inner.(DomainColumnCatalog)
	if m.empty("DomainColumns", typ) || !ok {
		return nil, false, false
	}
	a := m.ask([]string{"DomainColumns", typ}, func() (a memoAnswer) {
		a.cols, a.a, a.ok = dc.DomainColumns(ctx, typ)
		return a
	})
	return a.cols, a.a, a.ok
}

var _ CascadeCatalog = (*memoCatalog)(nil)

func (m *memoCatalog) CascadeDrops(ctx context.Context, kind, name, args string) ([]Dropped, bool) {
	cc, ok := m.inner.(CascadeCatalog)
	if !ok || m.empty("CascadeDrops", kind, name) {
		return nil, false
	}
	// Asked by rules drop-column and drop-table alike: once.
	a := m.ask([]string{"CascadeDrops", kind, name, args}, func() (a memoAnswer) {
		a.drop, a.ok = cc.CascadeDrops(ctx, kind, name, args)
		return a
	})
	return a.drop, a.ok
}

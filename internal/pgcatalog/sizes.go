package pgcatalog

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/pgguard/pgguard/policy"
)

// SizesFormat is the version of the exported sizes file. A reader refuses
// a file of a later version; format 1 (before the search_path and the
// indexes' keys were exported) is still read: its indexes count as
// unknown, so no key of it is taken as unique.
const SizesFormat = 2

// SizeFile is what `pgguard sizes export` writes: the size facts the
// rules use, for every table, partition, materialized view and index of
// one database, with no row data and no value of any column.
type SizeFile struct {
	Format           int       `json:"format"`
	Database         string    `json:"database"`
	ServerVersion    string    `json:"server_version"`
	ServerVersionNum int       `json:"server_version_num"`
	ExportedAt       time.Time `json:"exported_at"`
	// SearchPath is the exporting role's search_path in that database, as
	// PostgreSQL resolved it (current_schemas(false): the schemas that
	// exist, "$user" replaced). A name not found in the schema the
	// borrowing session resolves it to is looked up by it (format 2).
	SearchPath []string       `json:"search_path,omitempty"`
	Relations  []SizeRelation `json:"relations"`
}

// SizeRelation is one relation of a SizeFile.
type SizeRelation struct {
	Schema string `json:"schema"`
	Name   string `json:"name"`
	// Kind is table, partitioned, materialized_view, index or
	// partitioned_index.
	Kind string `json:"kind"`
	// Parent is the partitioned table a partition belongs to
	// ("schema.name", quoted where SQL needs it); Table the table an index
	// is on. Empty otherwise.
	Parent string `json:"parent,omitempty"`
	Table  string `json:"table,omitempty"`
	// Rows is the larger of the planner's estimate (reltuples) and the
	// statistics collector's live rows, as the session catalog's
	// TableSize counts them; a partitioned table's are its partitions',
	// and a table with inheritance children counts theirs too.
	Rows int64 `json:"rows"`
	// OwnRows, of a table with inheritance children (not partitions), is
	// its own rows without theirs, as UPDATE ONLY or DELETE FROM ONLY of it
	// reaches them; absent for every other relation (and in files of
	// earlier versions, whose ONLY statements then count Rows).
	OwnRows *int64 `json:"own_rows,omitempty"`
	// Bytes counts heap, TOAST and indexes from the pages the statistics
	// know of (relpages): no lock is taken on any relation.
	Bytes int64 `json:"bytes"`
	// Analyzed is true when the relation was ever analyzed (or vacuumed):
	// its row estimate is the planner's, not a guess.
	Analyzed     bool       `json:"analyzed"`
	LastAnalyzed *time.Time `json:"last_analyzed,omitempty"`
	// SizedFromFiles: never analyzed nor vacuumed (reltuples -1), so
	// Bytes were read from the relation's files (pg_total_relation_size),
	// as the source's own sessions' catalog sizes it.
	SizedFromFiles bool `json:"sized_from_files,omitempty"`
	// Of an index (format 2): whether it is unique, valid (a failed
	// CREATE INDEX CONCURRENTLY leaves it not), partial, and its key
	// columns' names; Columns is empty when a key column is an expression.
	Unique  bool     `json:"unique,omitempty"`
	Valid   bool     `json:"valid,omitempty"`
	Partial bool     `json:"partial,omitempty"`
	Columns []string `json:"columns,omitempty"`
}

var kinds = map[string]string{"r": "table", "p": "partitioned", "m": "materialized_view", "i": "index", "I": "partitioned_index"}

// ExportQuery reads every relation's size facts in one catalog query. It
// calls no function that opens a relation (pg_total_relation_size would
// take a lock on each, and 100,000 of them overflow the lock table), so
// bytes come from relpages, which VACUUM and ANALYZE keep; the relations
// never analyzed nor vacuumed, whose relpages say nothing, are sized from
// their files afterwards, a batch at a time (sizeFromFiles).
const ExportQuery = `WITH ix AS (
  SELECT x.indrelid, sum(i.relpages)::bigint AS pages
  FROM pg_catalog.pg_index x JOIN pg_catalog.pg_class i ON i.oid = x.indexrelid
  GROUP BY x.indrelid)
SELECT n.nspname, c.relname, c.relkind::text,
  CASE WHEN c.relispartition THEN pg_catalog.quote_ident(pn.nspname) || '.' || pg_catalog.quote_ident(p.relname) END,
  CASE WHEN c.relkind IN ('i', 'I') THEN pg_catalog.quote_ident(tn.nspname) || '.' || pg_catalog.quote_ident(tb.relname) END,
  (CASE WHEN ` + inheritanceTreeRows + ` ELSE greatest(c.reltuples, pg_catalog.pg_stat_get_live_tuples(c.oid), 0) END)::bigint,
  ((greatest(c.relpages, 0) + COALESCE(t.relpages, 0) + CASE WHEN c.relkind IN ('i', 'I') THEN 0 ELSE COALESCE(ix.pages, 0) END)::bigint
    * current_setting('block_size')::bigint),
  c.reltuples >= 0 OR pg_catalog.pg_stat_get_last_analyze_time(c.oid) IS NOT NULL OR pg_catalog.pg_stat_get_last_autoanalyze_time(c.oid) IS NOT NULL,
  to_char(greatest(pg_catalog.pg_stat_get_last_analyze_time(c.oid), pg_catalog.pg_stat_get_last_autoanalyze_time(c.oid)) AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
  c.oid::text,
  c.relkind IN ('r', 'm') AND c.reltuples < 0,
  xi.indisunique, xi.indisvalid, xi.indpred IS NOT NULL,
  CASE WHEN xi.indexprs IS NULL AND NOT (0 = ANY (xi.indkey::int2[])) THEN
    array_to_string(array(SELECT a.attname::text FROM unnest(xi.indkey::int2[]) k(n)
      JOIN pg_catalog.pg_attribute a ON a.attrelid = xi.indrelid AND a.attnum = k.n), chr(31)) END,
  CASE WHEN c.relkind = 'r' AND EXISTS (SELECT 1 FROM pg_catalog.pg_inherits i WHERE i.inhparent = c.oid)
    THEN greatest(c.reltuples, pg_catalog.pg_stat_get_live_tuples(c.oid), 0)::bigint END
FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_catalog.pg_class t ON t.oid = c.reltoastrelid
LEFT JOIN ix ON ix.indrelid = c.oid
LEFT JOIN pg_catalog.pg_inherits h ON c.relispartition AND h.inhrelid = c.oid
LEFT JOIN pg_catalog.pg_class p ON p.oid = h.inhparent
LEFT JOIN pg_catalog.pg_namespace pn ON pn.oid = p.relnamespace
LEFT JOIN pg_catalog.pg_index xi ON c.relkind IN ('i', 'I') AND xi.indexrelid = c.oid
LEFT JOIN pg_catalog.pg_class tb ON tb.oid = xi.indrelid
LEFT JOIN pg_catalog.pg_namespace tn ON tn.oid = tb.relnamespace
WHERE c.relkind IN ('r', 'p', 'm', 'i', 'I')
  AND c.relpersistence <> 't'
  AND n.nspname <> 'information_schema' AND n.nspname NOT LIKE 'pg\_%'
ORDER BY n.nspname, c.relname`

// ExportHead reads what the file says of the database itself.
const ExportHead = "SELECT pg_catalog.current_database(), pg_catalog.current_setting('server_version'), pg_catalog.current_setting('server_version_num')::int," +
	" pg_catalog.array_to_string(pg_catalog.current_schemas(false), chr(31))"

// filesBatch is how many never-analyzed relations one statement sizes
// from their files. pg_total_relation_size takes an ACCESS SHARE lock on
// the table, its TOAST table and its indexes until the statement ends
// (each statement is its own transaction): a few hundred relations hold a
// few thousand locks at most, far from the lock table's size, where one
// statement over 100,000 would overflow it.
const filesBatch = 200

// filesLockTimeout bounds the wait for a relation's lock (a migration
// holding ACCESS EXCLUSIVE): the export does not queue behind it.
const filesLockTimeout = "2s"

// Export reads the size facts of the database q is connected to.
func Export(q Querier, now time.Time) (*SizeFile, error) {
	head, ok := q.Query(ExportHead)
	if !ok || len(head) != 1 || len(head[0]) != 4 {
		return nil, errors.New("reading the database's name and version failed")
	}
	f := &SizeFile{Format: SizesFormat, ExportedAt: now.UTC().Truncate(time.Second)}
	if head[0][0] != nil {
		f.Database = *head[0][0]
	}
	if head[0][1] != nil {
		f.ServerVersion = *head[0][1]
	}
	f.ServerVersionNum = int(atoi(head[0][2]))
	if head[0][3] != nil && *head[0][3] != "" {
		f.SearchPath = strings.Split(*head[0][3], "\x1f")
	}
	rows, ok := q.Query(ExportQuery)
	if !ok {
		return nil, errors.New("reading the catalog failed")
	}
	f.Relations = make([]SizeRelation, 0, len(rows))
	var fromFiles []int // indexes in f.Relations
	oids := map[int]string{}
	for _, r := range rows {
		if len(r) != 16 || r[0] == nil || r[1] == nil || r[2] == nil || r[9] == nil {
			return nil, errors.New("the catalog query answered an unexpected row")
		}
		rel := SizeRelation{Schema: *r[0], Name: *r[1], Kind: kinds[*r[2]], Rows: atoi(r[5]), Bytes: atoi(r[6]), Analyzed: IsTrue(r[7])}
		if r[3] != nil {
			rel.Parent = *r[3]
		}
		if r[4] != nil {
			rel.Table = *r[4]
		}
		if r[8] != nil {
			if t, err := time.Parse(time.RFC3339Nano, *r[8]); err == nil {
				rel.LastAnalyzed = &t
			}
		}
		if rel.Kind == "index" || rel.Kind == "partitioned_index" {
			rel.Unique, rel.Valid, rel.Partial = IsTrue(r[11]), IsTrue(r[12]), IsTrue(r[13])
			if r[14] != nil && *r[14] != "" {
				rel.Columns = strings.Split(*r[14], "\x1f")
			}
		}
		if r[15] != nil {
			own := atoi(r[15])
			rel.OwnRows = &own
		}
		if IsTrue(r[10]) {
			fromFiles = append(fromFiles, len(f.Relations))
			oids[len(f.Relations)] = *r[9]
		}
		f.Relations = append(f.Relations, rel)
	}
	if err := sizeFromFiles(q, f, fromFiles, oids); err != nil {
		return nil, err
	}
	return f, nil
}

// sizeFromFiles sizes the relations never analyzed nor vacuumed from their
// files, as the source's own catalog does: their relpages say 0 whatever
// they hold, and after a statistics reset (pg_stat_reset, a crash, a
// failover) nothing else tells their size. filesBatch at a time, each
// batch a statement (and transaction) of its own, waiting at most
// filesLockTimeout for a lock. A batch that fails is sized one relation at
// a time; a relation that cannot be sized then (a lock held past the
// timeout) is left out of the file: the borrower judges it with its own
// size, lint as a table it does not know (large).
func sizeFromFiles(q Querier, f *SizeFile, idx []int, oids map[int]string) error {
	drop := map[int]bool{}
	run := func(batch []int) bool {
		list := make([]string, len(batch))
		for i, k := range batch {
			list[i] = oids[k]
		}
		rows, ok := q.Query("SELECT pg_catalog.set_config('lock_timeout', '" + filesLockTimeout + "', true);" +
			" SELECT r.oid::text, pg_catalog.pg_total_relation_size(r.oid) FROM unnest('{" + strings.Join(list, ",") + "}'::oid[]) r(oid)")
		if !ok {
			return false
		}
		got := make(map[string]*string, len(rows))
		for _, r := range rows {
			if len(r) == 2 && r[0] != nil {
				got[*r[0]] = r[1]
			}
		}
		for _, k := range batch {
			size, seen := got[oids[k]]
			if !seen || size == nil {
				drop[k] = true // dropped since the catalog was read
				continue
			}
			f.Relations[k].Bytes = atoi(size)
			f.Relations[k].SizedFromFiles = true
		}
		return true
	}
	for i := 0; i < len(idx); i += filesBatch {
		batch := idx[i:min(i+filesBatch, len(idx))]
		if run(batch) {
			continue
		}
		for _, k := range batch {
			if !run([]int{k}) {
				drop[k] = true
			}
		}
	}
	if len(drop) == 0 {
		return nil
	}
	kept := f.Relations[:0]
	for k, r := range f.Relations {
		if !drop[k] {
			kept = append(kept, r)
		}
	}
	f.Relations = kept
	return nil
}

// Write writes f as indented JSON.
func (f *SizeFile) Write(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", " ")
	return enc.Encode(f)
}

// ReadSizeFile reads and checks an exported sizes file.
func ReadSizeFile(r io.Reader) (*SizeFile, error) {
	var f SizeFile
	dec := json.NewDecoder(r)
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("not a pgguard sizes file: %w", err)
	}
	if f.Format < 1 || f.Format > SizesFormat {
		return nil, fmt.Errorf("sizes file format %d; this pgguard reads formats 1 to %d (pgguard sizes export writes %d)", f.Format, SizesFormat, SizesFormat)
	}
	if f.ExportedAt.IsZero() {
		return nil, errors.New("the file says no exported_at (pgguard sizes export always writes it)")
	}
	seen := make(map[[2]string]bool, len(f.Relations))
	known := map[string]bool{}
	for _, k := range kinds {
		known[k] = true
	}
	for i, r := range f.Relations {
		switch {
		case r.Schema == "" || r.Name == "":
			return nil, fmt.Errorf("relation %d has no schema or name", i+1)
		case seen[[2]string{r.Schema, r.Name}]:
			return nil, fmt.Errorf("relation %d: %q is listed twice", i+1, policy.Table{Schema: r.Schema, Name: r.Name}.String())
		case !known[r.Kind]:
			return nil, fmt.Errorf("relation %d: %q: unknown kind %q", i+1, policy.Table{Schema: r.Schema, Name: r.Name}.String(), r.Kind)
		case r.Rows < 0 || r.Bytes < 0 || r.OwnRows != nil && *r.OwnRows < 0:
			return nil, fmt.Errorf("relation %d: %q: negative rows or bytes", i+1, policy.Table{Schema: r.Schema, Name: r.Name}.String())
		}
		seen[[2]string{r.Schema, r.Name}] = true
	}
	return &f, nil
}

// LoadSizes reads an exported sizes file from disk and indexes it; the
// sizes are said to come from the file's database.
func LoadSizes(path string) (*Sizes, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	f, err := ReadSizeFile(fh)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	label := f.Database
	if label == "" {
		label = filepath.Base(path)
	}
	return NewSizes(f, label), nil
}

// Sizes is a SizeFile indexed by relation, with the name of where it came
// from (a target's name, or the exported database's).
type Sizes struct {
	File  *SizeFile
	Label string
	rels  map[[2]string]*SizeRelation
	// kids by the parent's schema and name, parsed from Parent (which
	// PostgreSQL's quote_ident spelled: it quotes names that
	// policy.QuoteIdent leaves bare, and the other way round).
	kids map[[2]string][]*SizeRelation
	// indexes by their table's schema and name, parsed from Table.
	indexes map[[2]string][]*SizeRelation
}

// NewSizes indexes f; label names where its sizes come from.
func NewSizes(f *SizeFile, label string) *Sizes {
	s := &Sizes{File: f, Label: label, rels: make(map[[2]string]*SizeRelation, len(f.Relations)), kids: map[[2]string][]*SizeRelation{}, indexes: map[[2]string][]*SizeRelation{}}
	for i := range f.Relations {
		r := &f.Relations[i]
		s.rels[[2]string{r.Schema, r.Name}] = r
		if r.Parent != "" {
			p := policy.ParseTableName(r.Parent)
			s.kids[[2]string{p.Schema, p.Name}] = append(s.kids[[2]string{p.Schema, p.Name}], r)
		}
		if r.Table != "" {
			t := policy.ParseTableName(r.Table)
			s.indexes[[2]string{t.Schema, t.Name}] = append(s.indexes[[2]string{t.Schema, t.Name}], r)
		}
	}
	return s
}

// UniqueKeys lists the key columns of schema.name's indexes that are
// unique, valid, not partial and over plain columns in the source, as
// Catalog.UniqueKeys does of the session's own. A file of format 1 says
// nothing of its indexes: none.
func (s *Sizes) UniqueKeys(schema, name string) [][]string {
	if s.File.Format < 2 {
		return nil
	}
	var keys [][]string
	for _, ix := range s.indexes[[2]string{schema, name}] {
		if ix.Unique && ix.Valid && !ix.Partial && len(ix.Columns) > 0 {
			keys = append(keys, ix.Columns)
		}
	}
	return keys
}

// sameColumns: a and b name the same set of columns.
func sameColumns(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	in := make(map[string]bool, len(a))
	for _, c := range a {
		in[c] = true
	}
	for _, c := range b {
		if !in[c] {
			return false
		}
	}
	return true
}

// From is the provenance refusals show: "production (sizes as of
// 2026-12-07 10:42 UTC)".
func (s *Sizes) From() string {
	return s.Label + " (sizes as of " + s.File.ExportedAt.UTC().Format("2006-01-02 15:04") + " UTC)"
}

// Age is how old the sizes are at now.
func (s *Sizes) Age(now time.Time) time.Duration { return now.Sub(s.File.ExportedAt) }

// Relation returns the facts of schema.name, or nil.
func (s *Sizes) Relation(schema, name string) *SizeRelation {
	return s.rels[[2]string{schema, name}]
}

// Resolve finds an unqualified name the way the exporting role's
// search_path did in the source (public when the file does not say it),
// then in any schema where it is the only one of that name: lint has no
// session to ask.
func (s *Sizes) Resolve(t policy.Table) *SizeRelation {
	return s.ResolveIn(t, nil)
}

// ResolveIn finds a name as Resolve does, but an unqualified one, when
// path is not nil (the file set its search_path), in path's schemas in
// order, as the server would; nil when none of them holds it (unknown,
// assumed large). "$user" stands for user; pg_catalog and pg_temp hold no
// table of the file.
func (s *Sizes) ResolveIn(t policy.Table, path []string, user ...string) *SizeRelation {
	if t.Schema != "" {
		return s.Relation(t.Schema, t.Name)
	}
	if path != nil {
		for _, schema := range path {
			if schema == "$user" {
				if len(user) == 0 || user[0] == "" {
					continue
				}
				schema = user[0]
			}
			if r := s.Relation(schema, t.Name); r != nil {
				return r
			}
		}
		return nil
	}
	home := s.File.SearchPath
	if len(home) == 0 {
		home = []string{"public"}
	}
	for _, schema := range home {
		if r := s.Relation(schema, t.Name); r != nil {
			return r
		}
	}
	var found *SizeRelation
	for _, r := range s.rels {
		if r.Name == t.Name {
			if found != nil {
				return nil
			}
			found = r
		}
	}
	return found
}

// TableSize is the size of schema.name as the session catalog's TableSize
// would answer it on the source: a partitioned table's rows and bytes are
// its leaf partitions'.
func (s *Sizes) TableSize(schema, name string) (policy.TableSize, bool) {
	r := s.Relation(schema, name)
	if r == nil {
		return policy.TableSize{}, false
	}
	size := policy.TableSize{Rows: r.Rows, Bytes: r.Bytes, From: s.From()}
	if r.Kind == "partitioned" {
		size.Rows, size.Bytes = s.leaves(r, 0)
	}
	return size, true
}

func (s *Sizes) leaves(r *SizeRelation, depth int) (rows, bytes int64) {
	if depth > 100 {
		return 0, 0
	}
	for _, k := range s.kids[[2]string{r.Schema, r.Name}] {
		if k.Kind == "partitioned" {
			r, b := s.leaves(k, depth+1)
			rows, bytes = addSat(rows, r), addSat(bytes, b)
			continue
		}
		rows, bytes = addSat(rows, k.Rows), addSat(bytes, k.Bytes)
	}
	return rows, bytes
}

// leafCount is the number of leaf partitions under partitioned table r.
func (s *Sizes) leafCount(r *SizeRelation, depth int) int64 {
	if depth > 100 {
		return 0
	}
	var n int64
	for _, k := range s.kids[[2]string{r.Schema, r.Name}] {
		if k.Kind == "partitioned" {
			n = addSat(n, s.leafCount(k, depth+1))
			continue
		}
		n = addSat(n, 1)
	}
	return n
}

// satMul multiplies two non-negative counts, stopping at the largest
// int64.
func satMul(a, b int64) int64 {
	if a != 0 && b > math.MaxInt64/a {
		return math.MaxInt64
	}
	return a * b
}

// addSat adds two sizes (never negative: ReadSizeFile refuses those),
// stopping at the largest int64: a file's numbers may be as large as it
// gets (edited by hand to mark a table huge), and a sum that wrapped
// around would be negative, small.
func addSat(a, b int64) int64 {
	if b > 0 && a > math.MaxInt64-b {
		return math.MaxInt64
	}
	return a + b
}

// rowsOf converts a scaled row count to an int64, the largest when it is
// past it (converting a float64 of 2^63 or more is undefined in Go, and
// negative on amd64).
func rowsOf(f float64) int64 {
	switch {
	case f >= math.MaxInt64:
		return math.MaxInt64
	case f < 0 || math.IsNaN(f):
		return 0
	}
	return int64(f)
}

// SizeSource gives the sizes a target borrows: from a file, or from
// another target's live catalog (cached). An error means the source cannot
// be read now; the session's own catalog then answers, never "small".
type SizeSource interface {
	Sizes() (*Sizes, error)
}

// DatabaseSizes is a SizeSource whose sizes depend on the session's
// database (a target serving several databases, each borrowing its
// counterpart's): For returns the source of a session of database, nil
// when that session is judged with its own sizes.
type DatabaseSizes interface {
	SizeSource
	For(database string) SizeSource
}

// SourcePlanner is a SizeSource that can also ask its database's own
// planner (a live source, over the monitor connection): the rows EXPLAIN
// of question (PlannerQuestion: a SELECT naming every relation as the
// source has it) estimates there, never running it. table is where
// the source has the statement's table; ok is false when the source
// cannot say (no privilege to read the table, a statement with
// parameters on a server without GENERIC_PLAN, the source unreachable).
type SourcePlanner interface {
	EstimateRowsAt(ctx context.Context, question string, table policy.Table) (int64, bool)
}

// StaticSizes is a SizeSource that always answers the same sizes (a file
// loaded at startup, or a test's).
type StaticSizes struct{ S *Sizes }

func (s StaticSizes) Sizes() (*Sizes, error) { return s.S, nil }

// Borrowed is the session's own catalog with its size questions (rows,
// bytes, a partitioned table's partitions) answered from another
// database's sizes, by qualified name: an unqualified name is resolved by
// the session's own catalog first. Everything else (indexes, columns,
// constraints, volatility, locks) is the session's own. A table the source
// does not know is judged with its own size; when the source cannot be
// read, the own catalog answers everything.
//
// Rule large-dml's estimates are the session's own planner's, scaled: the
// share of the own table's rows the statement touches, applied to the
// source's rows of that table.
type Borrowed struct {
	*Catalog
	Src SizeSource
	// Renames, when set, remembers the relations renamed through pgguard
	// in the own database (WillRename): a relation the source has no
	// relation of its name for is looked up by the names it had before.
	Renames *Renames
}

var (
	_ policy.Catalog        = (*Borrowed)(nil)
	_ policy.SizeProvenance = (*Borrowed)(nil)
	_ policy.RowCounter     = (*Borrowed)(nil)
)

// source resolves table and returns its facts in the source. An
// unqualified name is resolved by the session's own catalog; when the
// source has no relation of that schema and name (its tables live in
// another schema, which its roles' search_path names), the name is looked
// up as the source's own sessions would find it: by the exporting role's
// search_path there, else in the only schema that has a relation of that
// name (Sizes.Resolve).
func (b *Borrowed) source(ctx context.Context, table string) (*Sizes, policy.Table, bool) {
	if b.Src == nil || blank(table) {
		return nil, policy.Table{}, false
	}
	s, err := b.Src.Sizes()
	if err != nil || s == nil {
		return nil, policy.Table{}, false
	}
	t := policy.ParseTableName(table)
	if t.Schema == "" {
		rel, ok := b.Catalog.Relation(ctx, table)
		if !ok || !rel.Exists || rel.Temporary {
			return nil, policy.Table{}, false
		}
		t.Schema = rel.Schema
	}
	if policy.IsTempSchema(t.Schema) {
		return nil, policy.Table{}, false
	}
	r := s.Relation(t.Schema, t.Name)
	if r == nil {
		// Renamed through pgguard (earlier in the migration, or in an
		// earlier one) where the source has not run the rename yet.
		r = b.renamedInSource(s, t)
	}
	if r == nil {
		r = s.Resolve(policy.Table{Name: t.Name})
	}
	if r == nil {
		// Several schemas of the source have a table of that name, none
		// on the recorded search_path (the monitor role's, which may not
		// be the application's): the largest of them, never the
		// session's own size, which would let through what the source
		// refuses.
		r = s.largestNamed(t.Name)
	}
	if r == nil {
		return nil, policy.Table{}, false
	}
	return s, policy.Table{Schema: r.Schema, Name: r.Name}, true
}

// sourceName resolves a relation a statement names to where the source
// has it, for PlannerQuestion.
func (b *Borrowed) sourceName(ctx context.Context) func(policy.Table) (policy.Table, bool) {
	return func(t policy.Table) (policy.Table, bool) {
		_, st, ok := b.source(ctx, t.String())
		return st, ok
	}
}

// largestNamed is the largest table (by rows, then bytes) of that name in
// any schema of the source, nil when there is none.
func (s *Sizes) largestNamed(name string) *SizeRelation {
	var best *SizeRelation
	var bestSize policy.TableSize
	for _, r := range s.rels {
		if r.Name != name || (r.Kind != "table" && r.Kind != "partitioned" && r.Kind != "materialized_view") {
			continue
		}
		size, _ := s.TableSize(r.Schema, r.Name)
		if best == nil || size.Rows > bestSize.Rows || size.Rows == bestSize.Rows && (size.Bytes > bestSize.Bytes ||
			size.Bytes == bestSize.Bytes && r.Schema < best.Schema) {
			best, bestSize = r, size
		}
	}
	return best
}

// UniqueKeys are the own catalog's unique keys of table that are unique
// keys in the source too (an index unique and valid there, over the same
// columns): a key unique only in the session's database (its unique build
// failed in production, leaving the index INVALID) does not spare a
// statement by it the estimate production would make. A table the source
// does not know keeps the own keys.
func (b *Borrowed) UniqueKeys(ctx context.Context, table string) ([][]string, bool) {
	own, ok := b.Catalog.UniqueKeys(ctx, table)
	if !ok {
		return own, ok
	}
	s, t, found := b.source(ctx, table)
	if !found {
		return own, ok
	}
	src := s.UniqueKeys(t.Schema, t.Name)
	keys := own[:0:0]
	for _, k := range own {
		for _, sk := range src {
			if sameColumns(k, sk) {
				keys = append(keys, k)
				break
			}
		}
	}
	return keys, true
}

// TableSize answers from the source when it knows the table.
func (b *Borrowed) TableSize(ctx context.Context, table string) (policy.TableSize, bool) {
	if s, t, ok := b.source(ctx, table); ok {
		return s.TableSize(t.Schema, t.Name)
	}
	return b.Catalog.TableSize(ctx, table)
}

// IsPartitioned answers from the source when it knows the relation, as
// lint --sizes does: whether CREATE INDEX can be run CONCURRENTLY (and
// which recipe a refusal gives) depends on it, and a table partitioned in
// production but plain in the session's database (or the other way
// round) must be decided as production decides it: refused there, not
// rewritten here.
func (b *Borrowed) IsPartitioned(ctx context.Context, table string) (bool, bool) {
	if s, t, ok := b.source(ctx, table); ok {
		if r := s.Relation(t.Schema, t.Name); r != nil {
			return r.Kind == "partitioned" || r.Kind == "partitioned_index", true
		}
	}
	return b.Catalog.IsPartitioned(ctx, table)
}

// SizesFrom names the source of table's size, "" when it is the own.
func (b *Borrowed) SizesFrom(ctx context.Context, table string) string {
	if s, _, ok := b.source(ctx, table); ok {
		return s.From()
	}
	return ""
}

// statementSource finds the table whose rows sql changes (or reads, for a
// SELECT form) in the source: target is its name in the own database.
// Through a view (rename-table's recipe keeps the old name as one, and
// UPDATE, INSERT and DELETE through it reach the table), which the source
// exports no size of, it is the view's table, when the view reads exactly
// one relation, as an auto-updatable view does.
func (b *Borrowed) statementSource(ctx context.Context, sql string) (target string, s *Sizes, t policy.Table, ok bool) {
	if tables, upsert := UpsertSourceTables(sql); upsert {
		return b.largestSource(ctx, tables)
	}
	st := StatementTable(sql)
	if st.Name == "" {
		return "", nil, policy.Table{}, false
	}
	target = st.String()
	if s, t, ok = b.source(ctx, target); ok {
		return target, s, t, true
	}
	if b.Src == nil {
		return "", nil, policy.Table{}, false
	}
	if _, err := b.Src.Sizes(); err != nil {
		return "", nil, policy.Table{}, false
	}
	base := b.Catalog.viewBase(target)
	if base == "" {
		return "", nil, policy.Table{}, false
	}
	if s, t, ok = b.source(ctx, base); ok {
		return base, s, t, true
	}
	return "", nil, policy.Table{}, false
}

// largestSource is, of the tables an upsert's SELECT reads, the one the
// source has the most of against the session's own (the largest
// source rows per own row; an empty own table first): its rows may come
// from any of them, and scaling by a small one (a lookup table joined
// first, 5 rows everywhere) would judge production's 300,000 as UAT's 10.
func (b *Borrowed) largestSource(ctx context.Context, tables []policy.Table) (target string, s *Sizes, t policy.Table, ok bool) {
	best := -1.0
	for _, tb := range tables {
		name := tb.String()
		src, st, found := b.source(ctx, name)
		if !found {
			continue
		}
		size, _ := src.TableSize(st.Schema, st.Name)
		own, known := b.Catalog.TableSize(ctx, name)
		if !known {
			continue
		}
		ratio := math.Inf(1)
		if own.Rows > 0 {
			ratio = float64(size.Rows) / float64(own.Rows)
		}
		if !ok || ratio > best {
			target, s, t, ok, best = name, src, st, true, ratio
		}
	}
	return target, s, t, ok
}

// viewBase is the relation that changing the rows of view changes in the
// own database: the one relation an (auto-updatable) view reads, followed
// through views over views; "" when view is no view or reads several.
func (c *Catalog) viewBase(view string) string {
	name := view
	for depth := 0; depth < 8; depth++ {
		rows, ok := c.query("SELECT c.relkind::text, pg_catalog.array_to_string(array(SELECT DISTINCT pg_catalog.quote_ident(bn.nspname) || '.' || pg_catalog.quote_ident(b.relname)" +
			" FROM pg_catalog.pg_rewrite w JOIN pg_catalog.pg_depend d ON d.classid = 'pg_catalog.pg_rewrite'::pg_catalog.regclass AND d.objid = w.oid" +
			" AND d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass AND d.refobjid <> w.ev_class" +
			" JOIN pg_catalog.pg_class b ON b.oid = d.refobjid JOIN pg_catalog.pg_namespace bn ON bn.oid = b.relnamespace" +
			" WHERE w.ev_class = c.oid), chr(31))" + relationFilter(name))
		if !ok || len(rows) != 1 || len(rows[0]) != 2 || rows[0][0] == nil || rows[0][1] == nil {
			return ""
		}
		if *rows[0][0] != "v" {
			if name == view {
				return ""
			}
			return name
		}
		bases := *rows[0][1]
		if bases == "" || strings.Contains(bases, "\x1f") {
			return ""
		}
		name = bases
	}
	return ""
}

// scale turns rows of the own table into rows of the source's: the same
// share of its rows. ok=false when the source does not know the table.
func (b *Borrowed) scale(ctx context.Context, sql string, rows int64) (int64, bool) {
	target, s, t, src, own, ok := b.statementRows(ctx, sql)
	if !ok {
		return rows, false
	}
	share := 1.0
	if own > 0 && rows < own {
		share = float64(rows) / float64(own)
	}
	return b.batchBounded(ctx, sql, target, s, t, rowsOf(share*float64(src))), true
}

// statementRows are the rows of the statement's table that it may
// change, in the source and in the own database: the whole inheritance
// tree's, or with ONLY (UPDATE ONLY, DELETE FROM ONLY) the table's own, as
// each database's planner counts them. ok=false when the source does not
// know the table.
func (b *Borrowed) statementRows(ctx context.Context, sql string) (target string, s *Sizes, t policy.Table, src, own int64, ok bool) {
	target, s, t, ok = b.statementSource(ctx, sql)
	if !ok {
		return "", nil, t, 0, 0, false
	}
	srcSize, _ := s.TableSize(t.Schema, t.Name)
	ownSize, ok := b.Catalog.TableSize(ctx, target)
	if !ok {
		return "", nil, t, 0, 0, false
	}
	src, own = srcSize.Rows, ownSize.Rows
	if StatementOnly(sql) && target == StatementTable(sql).String() {
		if r := s.Relation(t.Schema, t.Name); r != nil && r.OwnRows != nil {
			src = *r.OwnRows
		}
		if n, ok := b.Catalog.ownRows(target); ok {
			own = n
		}
	}
	return target, s, t, src, own, true
}

// batchBounded caps rows, scaled to the source's size, at the number of
// values the statement keeps its rows by (BatchBound), when each names one
// row: a ctid of a plain table, a key unique in both databases (an integer
// one for a range). A batch of 1,000 or 10,000 rows touches every row of a
// 10-row UAT table, and that whole share of production's 300,000 is not
// what it changes in production.
func (b *Borrowed) batchBounded(ctx context.Context, sql, target string, s *Sizes, t policy.Table, rows int64) int64 {
	n, col, rng, ok := BatchBound(sql)
	if !ok || rows <= n {
		return rows
	}
	if col == "ctid" {
		r := s.Relation(t.Schema, t.Name)
		switch {
		case r == nil:
			return rows
		case r.Kind == "partitioned":
			// A ctid names one row of each leaf partition.
			if bound := satMul(n, s.leafCount(r, 0)); bound < rows {
				return bound
			}
			return rows
		case r.Kind != "table":
			return rows
		}
		return n
	}
	keys, ok := b.UniqueKeys(ctx, target)
	if !ok {
		return rows
	}
	for _, k := range keys {
		if len(k) != 1 || k[0] != col {
			continue
		}
		if rng {
			typ, ok := b.Catalog.ColumnType(ctx, target, col)
			if !ok || typ != "smallint" && typ != "integer" && typ != "bigint" {
				return rows
			}
		}
		return n
	}
	return rows
}

// EstimateRows is the own planner's estimate scaled to the source's size
// of the statement's table. When the own table is empty, no share of its
// rows says anything of the statement: a live source (SourcePlanner) is
// then asked for its own planner's estimate, and without one (a file, or
// a source that cannot say) the estimate is all of the source's rows, as
// scale makes it.
func (b *Borrowed) EstimateRows(ctx context.Context, sql string) (int64, bool) {
	rows, ok := b.Catalog.EstimateRows(ctx, sql)
	if !ok {
		return rows, ok
	}
	if p, isPlanner := b.Src.(SourcePlanner); isPlanner {
		if target, s, t, found := b.statementSource(ctx, sql); found {
			if own, ok := b.Catalog.TableSize(ctx, target); ok && own.Rows == 0 {
				if question, ok := PlannerQuestion(sql, b.sourceName(ctx)); ok {
					if est, ok := p.EstimateRowsAt(ctx, question, t); ok {
						return est, true
					}
				}
			} else if ok && b.readsEmptyTable(ctx, sql, target) {
				// Another table the statement reads is empty here but
				// not in the source: the own planner's share (of a join
				// with nothing) says nothing of the statement either.
				if question, ok := PlannerQuestion(sql, b.sourceName(ctx)); ok {
					if est, ok := p.EstimateRowsAt(ctx, question, t); ok {
						return est, true
					}
				}
				src, _ := s.TableSize(t.Schema, t.Name)
				if StatementOnly(sql) && target == StatementTable(sql).String() {
					if r := s.Relation(t.Schema, t.Name); r != nil && r.OwnRows != nil {
						return *r.OwnRows, true
					}
				}
				return src.Rows, true
			}
		}
	}
	scaled, _ := b.scale(ctx, sql, rows)
	return scaled, true
}

// readsEmptyTable reports whether sql reads a relation besides target that
// is empty in the own database but has rows in the source.
func (b *Borrowed) readsEmptyTable(ctx context.Context, sql, target string) bool {
	for _, rel := range readRelations(sql) {
		name := rel.String()
		if name == target {
			continue
		}
		own, ok := b.Catalog.TableSize(ctx, name)
		if !ok || own.Rows > 0 {
			continue
		}
		if s, t, ok := b.source(ctx, name); ok {
			if size, ok := s.TableSize(t.Schema, t.Name); ok && size.Rows > 0 {
				return true
			}
		}
	}
	return false
}

// EstimateRowsOn is what a SourcePlanner answers over q, a connection of
// pgguard's own to the source: EXPLAIN of question, a SELECT that names
// every relation as the source has it (PlannerQuestion), asked only when
// q's role may read table, so that a missing grant leaves no ERROR with
// the statement's text in the source's log.
//
// To estimate a comparison the planner evaluates every expression of
// constants, running the functions behind its operators, casts and calls
// (IMMUTABLE and STABLE ones): a statement sent by a session of the
// borrowing database must not make the source run code of its own with
// that session's arguments. So the source first parses the question
// without planning it — a temporary view of it, in a transaction that is
// rolled back — and pg_depend lists what its names resolved to: any
// function, operator, cast, type (but an enum's) or other object created
// after initdb (an OID from FirstNormalObjectId on), a relation that is
// not a plain, partitioned or materialized table (a view's or a foreign
// table's code would run), one with row security (its policies'
// expressions), or whose partition keys, indexes, CHECK constraints (an
// inheritance child's, which constraint exclusion folds) or extended
// statistics (their expressions are folded) use code of the database's
// own, a column the question reads of a type of the database's own (a
// range type's subtype_diff estimates @>) but an enum or a domain over a
// built-in type, or any btree operator family of the database's own that
// holds a built-in operator (predicate proofs evaluate its operators), and
// the question is not planned; nor when an event trigger of the source
// would fire for the view (noEventTrigger): ok=false, the borrower's fallback (all of
// the source's rows), never small. Names are resolved with search_path
// set to pg_catalog alone, so an unqualified operator or function can only
// be a built-in one. The EXPLAIN itself runs read-only; the transaction is
// rolled back, leaving nothing behind. The whole question is cancelled
// after questionTimeout.
func EstimateRowsOn(ctx context.Context, q Querier, question string, table policy.Table) (int64, bool) {
	form, ok := selectForm(question)
	if !ok || hasParameters(form) || !plannerSafe(form) || strings.Contains(form, explainTag) {
		// A statement with parameters cannot be a view; EXPLAIN
		// (GENERIC_PLAN) of it would plan what was never parsed first.
		return 0, false
	}
	c := &Catalog{Q: q}
	may, ok := c.oneBool("SELECT pg_catalog.has_table_privilege(" + QuoteLiteral(table.String()) + ", 'SELECT')")
	if !ok || !may {
		return 0, false
	}
	explain, ok := ExplainStatement(form, q.ServerVersion())
	if !ok {
		return 0, false
	}
	// The statement may name what the source does not have yet (a table
	// or column the release's earlier migrations created in the
	// borrowing database only), or what the role may not read: the view
	// or EXPLAIN then fails, and a failed statement is logged with its
	// text. Asked in a DO block that catches the error, it is not; the
	// plan comes back through a setting of the transaction, "" when it
	// was not planned. query_canceled is caught too (OTHERS does not
	// catch it): the question's statement_timeout, while it waits for a
	// lock production's own DDL holds, would log it all.
	//
	// The statement's text goes in settings of the transaction, in a
	// message of its own that takes no time: a message the source finds
	// slow (log_min_duration_statement) is logged whole, and the slow one,
	// the DO block, then holds no literal of the statement.
	if _, ok := q.Query("BEGIN READ WRITE; SET LOCAL search_path = pg_catalog; SET LOCAL statement_timeout = " +
		QuoteLiteral(questionTimeout) + "; SET LOCAL pgguard.question = " + QuoteLiteral(form) +
		"; SET LOCAL pgguard.question_explain = " + QuoteLiteral(explain)); !ok {
		q.Query("ROLLBACK")
		return 0, false
	}
	rows, ok := q.Query("DO " + explainTag +
		" DECLARE plan text := ''; safe boolean := false; BEGIN" +
		" BEGIN IF " + noEventTrigger + " THEN EXECUTE 'CREATE TEMPORARY VIEW pgguard_question AS ' || pg_catalog.current_setting('pgguard.question'); END IF;" +
		" SELECT " + questionSafe + " INTO safe FROM pg_catalog.pg_rewrite r WHERE r.ev_class = 'pg_temp.pgguard_question'::pg_catalog.regclass;" +
		" RAISE SQLSTATE 'P0001';" + // undoes the view
		" EXCEPTION WHEN OTHERS OR query_canceled THEN NULL; END;" +
		" IF safe THEN PERFORM pg_catalog.set_config('transaction_read_only', 'on', true);" +
		" BEGIN EXECUTE pg_catalog.current_setting('pgguard.question_explain') INTO plan; EXCEPTION WHEN OTHERS OR query_canceled THEN plan := ''; END;" +
		" END IF;" +
		" PERFORM pg_catalog.set_config('pgguard.explain', plan, true);" +
		" END " + explainTag + "; SELECT pg_catalog.current_setting('pgguard.explain', true)")
	q.Query("ROLLBACK")
	if !ok || len(rows) != 1 || len(rows[0]) != 1 || rows[0][0] == nil || *rows[0][0] == "" {
		return 0, false
	}
	return planRows(*rows[0][0])
}

// questionTimeout bounds the question in the source (its statement_timeout
// there): parsing and planning a statement of built-ins takes
// milliseconds, but folding its constants can take as long as a uat
// user's statement makes it (strpos of long strings, a regular
// expression), all that time holding a lock on the question's tables
// that the source's own DDL waits for, and every query of them behind it.
// A question cancelled is not answered (all of the source's rows).
const questionTimeout = "2s"

// noEventTrigger is true when no event trigger of the source would fire
// for the question's CREATE TEMPORARY VIEW (a DDL audit's code would run,
// with the question in its current_query()): otherwise the view is not
// created, and the question not planned.
const noEventTrigger = `NOT EXISTS (SELECT 1 FROM pg_catalog.pg_event_trigger e WHERE e.evtenabled <> 'D'
  AND e.evtevent IN ('ddl_command_start', 'ddl_command_end') AND (e.evttags IS NULL OR 'CREATE VIEW' = ANY (e.evttags)))`

// questionSafe is true when the rewrite rule r of the question's view
// depends on nothing of the database's own that planning would run (see
// EstimateRowsOn). 16384 is FirstNormalObjectId: every object initdb did
// not create has an OID from it on.
const questionSafe = `NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d
  WHERE d.classid = 'pg_catalog.pg_rewrite'::pg_catalog.regclass AND d.objid = r.oid AND d.refobjid >= 16384
    AND d.refclassid NOT IN ('pg_catalog.pg_class'::pg_catalog.regclass, 'pg_catalog.pg_collation'::pg_catalog.regclass)
    AND NOT (d.refclassid = 'pg_catalog.pg_type'::pg_catalog.regclass
      AND EXISTS (SELECT 1 FROM pg_catalog.pg_type t WHERE t.oid = d.refobjid AND t.typtype = 'e')))
AND NOT EXISTS (WITH RECURSIVE tree(oid) AS (
    SELECT d.refobjid FROM pg_catalog.pg_depend d
    WHERE d.classid = 'pg_catalog.pg_rewrite'::pg_catalog.regclass AND d.objid = r.oid
      AND d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass AND d.refobjid <> r.ev_class
    UNION SELECT i.inhrelid FROM pg_catalog.pg_inherits i JOIN tree ON i.inhparent = tree.oid)
  SELECT 1 FROM tree JOIN pg_catalog.pg_class c ON c.oid = tree.oid
  WHERE c.oid >= 16384 AND c.relkind NOT IN ('r', 'p', 'm') OR c.relrowsecurity
    OR EXISTS (SELECT 1 FROM pg_catalog.pg_partitioned_table p WHERE p.partrelid = c.oid
      AND (p.partexprs IS NOT NULL OR EXISTS (SELECT 1 FROM pg_catalog.unnest(p.partclass::pg_catalog.oid[]) o WHERE o >= 16384)))
    OR EXISTS (SELECT 1 FROM pg_catalog.pg_index x WHERE x.indrelid = c.oid
      AND (EXISTS (SELECT 1 FROM pg_catalog.unnest(x.indclass::pg_catalog.oid[]) o WHERE o >= 16384)
        OR EXISTS (SELECT 1 FROM pg_catalog.pg_depend xd WHERE xd.classid = 'pg_catalog.pg_class'::pg_catalog.regclass
          AND xd.objid = x.indexrelid AND xd.refobjid >= 16384
          AND xd.refclassid IN ('pg_catalog.pg_proc'::pg_catalog.regclass, 'pg_catalog.pg_operator'::pg_catalog.regclass))))
    OR EXISTS (SELECT 1 FROM pg_catalog.pg_depend xd
      WHERE xd.refobjid >= 16384 AND xd.refclassid IN ('pg_catalog.pg_proc'::pg_catalog.regclass, 'pg_catalog.pg_operator'::pg_catalog.regclass)
        AND (xd.classid = 'pg_catalog.pg_constraint'::pg_catalog.regclass
            AND xd.objid IN (SELECT k.oid FROM pg_catalog.pg_constraint k WHERE k.conrelid = c.oid)
          OR xd.classid = 'pg_catalog.pg_statistic_ext'::pg_catalog.regclass
            AND xd.objid IN (SELECT s.oid FROM pg_catalog.pg_statistic_ext s WHERE s.stxrelid = c.oid))))
AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d
  JOIN pg_catalog.pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
  JOIN pg_catalog.pg_type t ON t.oid = a.atttypid
  WHERE d.classid = 'pg_catalog.pg_rewrite'::pg_catalog.regclass AND d.objid = r.oid
    AND d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass AND d.refobjsubid > 0
    AND t.oid >= 16384 AND t.typtype <> 'e' AND NOT (t.typtype = 'd' AND t.typbasetype < 16384))
AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_amop a WHERE a.amopfamily >= 16384 AND a.amopopr < 16384
  AND a.amopmethod = 403)`

// explainTag quotes the DO block EstimateRowsOn asks the source's planner
// in.
const explainTag = "$pgguard_explain$"

// CountRows counts in the own database and scales the count the same way.
// A count stops at its limit, where it no longer tells the statement's
// share of the own rows: when the own table is the larger, the own count
// goes on to as many rows as make limit of the source's, and a count that
// stops there is at least limit of the source's.
func (b *Borrowed) CountRows(ctx context.Context, sql string, limit int64) (int64, bool) {
	ownLimit := limit
	if _, _, _, src, own, ok := b.statementRows(ctx, sql); ok && src > 0 && own > src {
		ownLimit = addSat(rowsOf(math.Ceil(float64(limit)*float64(own)/float64(src))), 1)
	}
	rows, ok := b.Catalog.CountRows(ctx, sql, ownLimit)
	if !ok {
		return rows, ok
	}
	scaled, _ := b.scale(ctx, sql, rows)
	if rows >= ownLimit && scaled < limit {
		scaled = limit
		if target, s, t, ok := b.statementSource(ctx, sql); ok {
			scaled = b.batchBounded(ctx, sql, target, s, t, scaled)
		}
	}
	return scaled, true
}

// FileCatalog is lint's catalog with an exported sizes file: it knows the
// sizes (and which tables are partitioned) and nothing else, which stays
// unknown as without a catalog.
type FileCatalog struct {
	S *Sizes
	// SearchPath is the search_path the file set (SET search_path), nil
	// when it set none; User is the role "$user" stands for.
	SearchPath []string
	User       string
	// Renamed are the tables renamed (or moved) earlier in the linted
	// files, which the file's database, exported before the migration
	// ran, has by their name before: by the name after, as the statement
	// spelled it (no schema when it named none), the name before. nil
	// for none.
	Renamed map[policy.Table]policy.Table
}

var _ policy.SourceLacker = FileCatalog{}

// Lacks reports whether the file has no relation named table: in its
// schema when it is qualified, in any schema when it is not.
func (c FileCatalog) Lacks(_ context.Context, table string) bool {
	t := policy.ParseTableName(table)
	if t.Name == "" || c.S == nil {
		return false
	}
	if t.Schema != "" {
		return c.S.Relation(t.Schema, t.Name) == nil
	}
	for _, r := range c.S.rels {
		if r.Name == t.Name {
			return false
		}
	}
	return true
}

func (c FileCatalog) resolve(table string) *SizeRelation {
	t := policy.ParseTableName(table)
	for depth := 0; depth < 16; depth++ {
		if r := c.S.ResolveIn(t, c.SearchPath, c.User); r != nil {
			return r
		}
		before, ok := c.renamedFrom(t)
		if !ok {
			return nil
		}
		t = before
	}
	return nil
}

// renamedFrom is the name t had before a rename earlier in the files: by
// t as spelled, else by its name alone when one rename only gave it.
func (c FileCatalog) renamedFrom(t policy.Table) (policy.Table, bool) {
	if before, ok := c.Renamed[t]; ok {
		return before, true
	}
	if before, ok := c.Renamed[policy.Table{Name: t.Name}]; ok && t.Schema != "" {
		return before, true
	}
	var found policy.Table
	n := 0
	for after, before := range c.Renamed {
		if after.Name == t.Name && (t.Schema == "" || after.Schema == t.Schema) {
			found = before
			n++
		}
	}
	return found, n == 1
}

// WillRename remembers a rename earlier in the linted files
// (policy.RenameObserver).
func (c FileCatalog) WillRename(_ context.Context, from string, to policy.Table) {
	if c.Renamed != nil {
		c.Renamed[to] = policy.ParseTableName(from)
	}
}

var _ policy.Catalog = FileCatalog{}

func (c FileCatalog) TableSize(_ context.Context, table string) (policy.TableSize, bool) {
	r := c.resolve(table)
	if r == nil {
		return policy.TableSize{}, false
	}
	return c.S.TableSize(r.Schema, r.Name)
}

func (c FileCatalog) IsPartitioned(_ context.Context, table string) (bool, bool) {
	r := c.resolve(table)
	if r == nil {
		return false, false
	}
	return r.Kind == "partitioned" || r.Kind == "partitioned_index", true
}

func (FileCatalog) HasValidatedNotNullCheck(context.Context, string, string) (bool, bool) {
	return false, false
}
func (FileCatalog) Index(context.Context, string) (bool, bool, bool)    { return false, false, false }
func (FileCatalog) HasUniqueIndex(context.Context, string) (bool, bool) { return false, false }
func (FileCatalog) FunctionVolatility(context.Context, string) (policy.Volatility, bool) {
	return policy.VolatilityUnknown, false
}

// UniqueKeys are the file's unique keys of table (unique, valid, not
// partial indexes over plain columns).
func (c FileCatalog) UniqueKeys(_ context.Context, table string) ([][]string, bool) {
	r := c.resolve(table)
	if r == nil {
		return nil, false
	}
	return c.S.UniqueKeys(r.Schema, r.Name), true
}

// EstimateRows knows what a planner would say of a statement that changes
// every row of one table: that table's rows. Of anything else it knows
// nothing.
func (c FileCatalog) EstimateRows(ctx context.Context, sql string) (int64, bool) {
	t, whole := WholeTable(sql)
	if !whole {
		return 0, false
	}
	size, ok := c.TableSize(ctx, t.String())
	if r := c.resolve(t.String()); ok && r != nil && r.OwnRows != nil && StatementOnly(sql) {
		return *r.OwnRows, true // UPDATE ONLY: the parent's own rows
	}
	return size.Rows, ok
}

// SizesFrom names the file's database for every table it knows.
func (c FileCatalog) SizesFrom(_ context.Context, table string) string {
	if c.resolve(table) == nil {
		return ""
	}
	return c.S.From()
}

// FormatAge spells an age for logs and readiness: 4m12s.
func FormatAge(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	return d.Truncate(time.Second).String()
}

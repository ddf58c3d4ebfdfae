package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pgguard/pgguard/internal/observe"
	"github.com/pgguard/pgguard/internal/pgcatalog"
	"github.com/pgguard/pgguard/policy"
)

// sizesFileCheck is how often a sizes_file is looked at for a new version.
const sizesFileCheck = 10 * time.Second

// sizeReporter is a source of borrowed sizes that reports its state.
type sizeReporter interface {
	pgcatalog.SizeSource
	State() pgcatalog.SizeState
}

// borrowing is the running sources of the targets that borrow sizes: one
// per file and one per source target and database, however many targets
// share it. Every target has a targetSizes, borrowing or not, so that a
// reload (SIGHUP) can start or stop a target's borrowing for the sessions
// that start after it.
type borrowing struct {
	log     *slog.Logger
	targets map[string]*targetSizes

	mu      sync.Mutex
	entries []borrowEntry
	sources map[string]*runningSource // by sourceKey
}

type borrowEntry struct {
	target string
	src    sizeReporter
}

// runningSource is a started source and how to stop it.
type runningSource struct {
	src  sizeReporter
	stop func()
}

// startBorrowing gives every target of o a targetSizes and starts the
// sources of o.borrow.
func startBorrowing(o *serveOptions, log *slog.Logger) (*borrowing, error) {
	b := &borrowing{log: log, targets: map[string]*targetSizes{}, sources: map[string]*runningSource{}}
	for i := range o.proxy.Targets {
		ts := &targetSizes{target: o.proxy.Targets[i].Name, log: log}
		b.targets[ts.target] = ts
		o.proxy.Targets[i].Sizes = ts
	}
	if err := b.apply(o.borrow); err != nil {
		return nil, err
	}
	return b, nil
}

// fileDatabase is the database a sizes_file must hold the sizes of at
// every version: the one sizes_databases names (check-config makes them
// all the file's), "" without sizes_databases.
func fileDatabase(spec borrowSpec) string {
	for _, db := range spec.databases {
		return db
	}
	return ""
}

// sourceKey names a source by everything it is read with: a source whose
// settings did not change is kept across a reload (no new first read).
func sourceKey(spec borrowSpec, database string) string {
	if spec.file != "" {
		return "file\x00" + spec.file + "\x00" + fileDatabase(spec)
	}
	c := spec.conn
	return fmt.Sprintf("live\x00%s\x00%s\x00%s\x00%s\x00%s\x00%s\x00%v\x00%v\x00%s", spec.from, database, c.Upstream, c.User, c.Password, c.PasswordFile, c.TLS != nil, c.ConnectTimeout, spec.refresh)
}

// apply starts the sources specs need (keeping those already running with
// the same settings), routes each target's session databases to them,
// and stops the sources no longer used. On error nothing changes.
func (b *borrowing) apply(specs []borrowSpec) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	started := map[string]*runningSource{}
	used := map[string]*runningSource{}
	fail := func(err error) error {
		for _, r := range started {
			r.stop()
		}
		return err
	}
	get := func(spec borrowSpec, database string) (sizeReporter, error) {
		key := sourceKey(spec, database)
		if r := used[key]; r != nil {
			return r.src, nil
		}
		if r := b.sources[key]; r != nil {
			used[key] = r
			return r.src, nil
		}
		var r *runningSource
		if spec.file != "" {
			f, err := pgcatalog.NewFileSizesOf(spec.file, fileDatabase(spec), b.log)
			if err != nil {
				return nil, fmt.Errorf("target %s: sizes_file: %w", spec.target, err)
			}
			r = &runningSource{src: f, stop: f.Watch(sizesFileCheck)}
		} else {
			conn, name := spec.conn, spec.from
			if database != "" {
				conn.Database, name = database, spec.from+"/"+database
			}
			l := pgcatalog.NewLiveSizes(name, conn, spec.refresh, b.log)
			r = &runningSource{src: l, stop: l.Start()}
		}
		started[key], used[key] = r, r
		return r.src, nil
	}
	routes := map[string]*sizeRoutes{}
	var entries []borrowEntry
	for _, spec := range specs {
		if b.targets[spec.target] == nil {
			b.log.Warn("borrowed sizes: a target added to the rules file starts listening at the next restart", "target", spec.target)
			continue
		}
		r := &sizeRoutes{}
		if spec.databases == nil {
			src, err := get(spec, "")
			if err != nil {
				return fail(err)
			}
			r.all = src
			entries = append(entries, borrowEntry{target: spec.target, src: src})
		} else {
			r.byDB = map[string]sizeReporter{}
			seen := map[sizeReporter]bool{}
			names := make([]string, 0, len(spec.databases))
			for own := range spec.databases {
				names = append(names, own)
			}
			sort.Strings(names)
			for _, own := range names {
				db := spec.databases[own]
				if spec.file != "" {
					db = ""
				}
				src, err := get(spec, db)
				if err != nil {
					return fail(err)
				}
				r.byDB[own] = src
				if !seen[src] {
					seen[src] = true
					entries = append(entries, borrowEntry{target: spec.target, src: src})
				}
			}
		}
		routes[spec.target] = r
	}
	for name, ts := range b.targets {
		old := ts.routes.Swap(routes[name])
		if !sameRoutes(old, routes[name]) {
			if r := routes[name]; r != nil {
				b.log.Info("borrowed sizes: target judged with another database's table sizes", "target", name, "sources", r.describe())
			} else if old != nil {
				b.log.Info("borrowed sizes: target judged with its own sizes again", "target", name)
			}
		}
	}
	for key, r := range b.sources {
		if used[key] == nil {
			r.stop()
		}
	}
	b.sources, b.entries = used, entries
	return nil
}

func (b *borrowing) stop() {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, r := range b.sources {
		r.stop()
	}
	b.sources = map[string]*runningSource{}
	for _, ts := range b.targets {
		ts.routes.Store(nil)
	}
}

func (b *borrowing) current() []borrowEntry {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.entries
}

// metrics lists the state of every borrowing target's sources for /metrics.
func (b *borrowing) metrics() []observe.BorrowedSizes {
	now := time.Now()
	entries := b.current()
	out := make([]observe.BorrowedSizes, 0, len(entries))
	for _, e := range entries {
		st := e.src.State()
		m := observe.BorrowedSizes{Target: e.target, Source: st.Source, Failures: st.Failures, PlannerUnreachable: st.PlannerUnreachable, Age: -1}
		if !st.AsOf.IsZero() {
			m.Age, m.InUse = now.Sub(st.AsOf).Seconds(), true
		}
		out = append(out, m)
	}
	return out
}

// unmapped counts, per target, the sessions judged with their own sizes
// because sizes_databases does not name their database.
func (b *borrowing) unmapped() map[string]int64 {
	out := map[string]int64{}
	for name, ts := range b.targets {
		if n := ts.unmapped.Load(); n > 0 || ts.routes.Load() != nil {
			out[name] = n
		}
	}
	return out
}

// report writes a line per borrowing target and source for /readiness.
// Like the upstreams, a source that cannot be read is detail, not
// unreadiness: the sessions are judged with their own database's sizes
// meanwhile.
func (b *borrowing) report(w io.Writer) {
	now := time.Now()
	for _, e := range b.current() {
		st := e.src.State()
		switch {
		case !st.AsOf.IsZero() && st.Err == nil:
			fmt.Fprintf(w, "sizes %s: from %s, as of %s (%s old)\n", e.target, st.Source, st.AsOf.UTC().Format(time.RFC3339), ago(now, st.AsOf))
		case !st.AsOf.IsZero():
			fmt.Fprintf(w, "sizes %s: from %s, as of %s (%s old); reading them again failed: %v\n", e.target, st.Source, st.AsOf.UTC().Format(time.RFC3339), ago(now, st.AsOf), st.Err)
		case st.Err != nil:
			fmt.Fprintf(w, "sizes %s: %s cannot be read, the target's own sizes are used: %v\n", e.target, st.Source, st.Err)
		default:
			fmt.Fprintf(w, "sizes %s: %s not read yet, the target's own sizes are used\n", e.target, st.Source)
		}
	}
}

// sizeRoutes says which source a target's sessions borrow from: all of
// them the same (no sizes_databases), or by their database.
type sizeRoutes struct {
	all  sizeReporter
	byDB map[string]sizeReporter
}

func (r *sizeRoutes) pick(database string) sizeReporter {
	switch {
	case r == nil:
		return nil
	case r.byDB != nil:
		return r.byDB[database]
	}
	return r.all
}

func (r *sizeRoutes) describe() string {
	if r.byDB == nil {
		return r.all.State().Source
	}
	names := make([]string, 0, len(r.byDB))
	for own, src := range r.byDB {
		names = append(names, own+" → "+src.State().Source)
	}
	sort.Strings(names)
	return fmt.Sprint(names)
}

func sameRoutes(a, b *sizeRoutes) bool {
	if a == nil || b == nil {
		return a == b
	}
	if a.all != b.all || len(a.byDB) != len(b.byDB) {
		return false
	}
	for k, v := range a.byDB {
		if b.byDB[k] != v {
			return false
		}
	}
	return true
}

// maxWarnedDatabases bounds the database names a target warns of once
// each (a client chooses the name it connects to).
const maxWarnedDatabases = 100

// targetSizes is a target's proxy.Target.Sizes: its sessions' source of
// borrowed sizes, chosen by their database, and changed by a reload.
type targetSizes struct {
	target   string
	log      *slog.Logger
	routes   atomic.Pointer[sizeRoutes]
	unmapped atomic.Int64

	mu     sync.Mutex
	warned map[string]bool
	// renames by session database: the tables renamed through the
	// target, kept as long as pgguard runs (reloads included), so that a
	// table renamed by an earlier migration is still found in the source
	// by its name before until the source has run the rename too.
	renames map[string]*pgcatalog.Renames
}

var _ pgcatalog.DatabaseSizes = (*targetSizes)(nil)

// maxRenameDatabases bounds the databases a target keeps renames for (a
// client chooses the name it connects to); a session of any other keeps
// its own.
const maxRenameDatabases = 1000

func (t *targetSizes) renamesOf(database string) *pgcatalog.Renames {
	t.mu.Lock()
	defer t.mu.Unlock()
	if r := t.renames[database]; r != nil {
		return r
	}
	if len(t.renames) >= maxRenameDatabases {
		return nil
	}
	if t.renames == nil {
		t.renames = map[string]*pgcatalog.Renames{}
	}
	r := pgcatalog.NewRenames()
	t.renames[database] = r
	return r
}

// Sizes answers for a session of no particular database (none asks).
func (t *targetSizes) Sizes() (*pgcatalog.Sizes, error) {
	return routedSizes{t, ""}.Sizes()
}

// For returns the source of a session of database. It follows the
// target's routes at each question, so that a reload reaches running
// sessions: one opened while the target borrowed no sizes, or while
// sizes_databases did not name its database, borrows once a reload says
// so. While there is no route for it, its questions get an error and the
// session is judged with its own sizes, never another database's (a
// session of a database sizes_databases does not name is counted, and
// logged once per database).
func (t *targetSizes) For(database string) pgcatalog.SizeSource {
	r := t.routes.Load()
	if r == nil {
		return routedSizes{t, database}
	}
	if r.pick(database) == nil {
		t.unmapped.Add(1)
		t.mu.Lock()
		first := !t.warned[database] && len(t.warned) < maxWarnedDatabases
		if first {
			if t.warned == nil {
				t.warned = map[string]bool{}
			}
			t.warned[database] = true
		}
		t.mu.Unlock()
		if first {
			t.log.Warn("borrowed sizes: sizes_databases names no source database for this session's database; its sessions are judged with their own sizes",
				"target", t.target, "database", database)
		}
	}
	return routedSizes{t, database}
}

// routedSizes is one session's source: the route of its database as it is
// at each question, so that a reload reaches running sessions too (a
// route removed: their own sizes).
type routedSizes struct {
	t        *targetSizes
	database string
}

var _ pgcatalog.SourcePlanner = routedSizes{}
var _ pgcatalog.RenameSource = routedSizes{}

// Renames are the target's renames in the session's database.
func (r routedSizes) Renames() *pgcatalog.Renames { return r.t.renamesOf(r.database) }

func (r routedSizes) Sizes() (*pgcatalog.Sizes, error) {
	src := r.t.routes.Load().pick(r.database)
	if src == nil {
		return nil, fmt.Errorf("target %s borrows no sizes for this database any more", r.t.target)
	}
	return src.Sizes()
}

func (r routedSizes) EstimateRowsAt(ctx context.Context, sql string, table policy.Table) (int64, bool) {
	if p, ok := r.t.routes.Load().pick(r.database).(pgcatalog.SourcePlanner); ok {
		return p.EstimateRowsAt(ctx, sql, table)
	}
	return 0, false
}

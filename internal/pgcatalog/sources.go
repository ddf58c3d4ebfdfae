package pgcatalog

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/pgguard/pgguard/policy"
)

// SizeState is what metrics and readiness show of a source of borrowed
// sizes.
type SizeState struct {
	// Source names it: a target's name, or a file's path.
	Source string
	// AsOf is when the sizes in use were read from their database; zero
	// when none are in use (the sessions are judged with their own).
	AsOf time.Time
	// Err is why the last read failed; nil when it succeeded.
	Err error
	// Failures counts the reads that failed since pgguard started.
	Failures int64
	// PlannerUnreachable counts the questions to the source's planner
	// (LiveSizes.EstimateRowsAt) not asked because the source could not
	// be reached, or was not tried again yet after it could not
	// (plannerBreaker): their estimate is all of the source's rows.
	PlannerUnreachable int64
}

// tracked holds a source's current sizes and the outcome of its reads.
type tracked struct {
	source string
	log    *slog.Logger
	// maxAge: sizes read longer ago than this are no longer used (0: no
	// limit); the sessions then fall back to their own database's.
	maxAge time.Duration
	now    func() time.Time

	// firstRead is closed when the first read started by Start ends
	// (nil: none started); until then, for at most firstWait, Sizes waits
	// for it rather than have a session judged with its own sizes because
	// pgguard has only just started.
	firstRead chan struct{}
	firstOnce sync.Once
	firstWait time.Duration

	mu       sync.Mutex
	cur      *Sizes
	read     time.Time // when cur was read
	err      error
	failures int64
	// plannerUnreachable: SizeState.PlannerUnreachable.
	plannerUnreachable int64
}

func (t *tracked) clock() time.Time {
	if t.now != nil {
		return t.now()
	}
	return time.Now()
}

// Sizes returns the sizes in use, or why there are none.
func (t *tracked) Sizes() (*Sizes, error) {
	t.mu.Lock()
	first := t.firstRead
	t.mu.Unlock()
	if first != nil {
		timer := time.NewTimer(t.firstWait)
		select {
		case <-first:
		case <-timer.C:
		}
		timer.Stop()
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	switch {
	case t.cur == nil && t.err != nil:
		return nil, t.err
	case t.cur == nil:
		return nil, errors.New("the sizes of " + t.source + " were not read yet")
	case t.maxAge > 0 && t.clock().Sub(t.read) > t.maxAge:
		return nil, fmt.Errorf("the sizes of %s read last at %s are too old (the reads since failed: %v)", t.source, t.read.UTC().Format(time.RFC3339), t.err)
	}
	return t.cur, nil
}

// State reports the source for metrics and readiness.
func (t *tracked) State() SizeState {
	t.mu.Lock()
	defer t.mu.Unlock()
	st := SizeState{Source: t.source, Err: t.err, Failures: t.failures, PlannerUnreachable: t.plannerUnreachable}
	if t.cur != nil && (t.maxAge == 0 || t.clock().Sub(t.read) <= t.maxAge) {
		st.AsOf = t.cur.File.ExportedAt
	}
	return st
}

// done records the outcome of a read: new sizes, or an error (the sizes
// read before stay in use, within maxAge).
func (t *tracked) done(s *Sizes, err error) {
	t.mu.Lock()
	first := t.err == nil
	if err != nil {
		t.err = err
		t.failures++
	} else {
		t.cur, t.read, t.err = s, t.clock(), nil
	}
	if ch := t.firstRead; ch != nil {
		t.firstOnce.Do(func() { close(ch) })
	}
	t.mu.Unlock()
	if err != nil && first && t.log != nil {
		// Once per outage; the metric counts every failed read.
		t.log.Warn("borrowed sizes: cannot read them; the sessions that borrow them are judged with their own database's sizes once those in hand are too old (never as small)",
			"source", t.source, "err", err)
	}
	if err == nil && !first && t.log != nil {
		t.log.Info("borrowed sizes: read again", "source", t.source, "relations", len(s.File.Relations))
	}
}

// FileSizes is a sizes file (sizes_file) read at startup and again when it
// changes: a scheduled job may replace it (pgguard sizes export --output
// writes it whole and renames it into place). A file that cannot be read
// later leaves the sizes read before in use.
type FileSizes struct {
	tracked
	path    string
	modTime time.Time
	size    int64
	// database, when set, is the database whose sizes the file must hold
	// (sizes_databases names it): a version of another database's is
	// refused as a file that cannot be read.
	database string
}

// NewFileSizes reads path; an error means it cannot be used at all.
func NewFileSizes(path string, log *slog.Logger) (*FileSizes, error) {
	return NewFileSizesOf(path, "", log)
}

// NewFileSizesOf is NewFileSizes for a file that must hold database's
// sizes, at every version ("" for any database).
func NewFileSizesOf(path, database string, log *slog.Logger) (*FileSizes, error) {
	f := &FileSizes{tracked: tracked{source: path, log: log}, path: path, database: database}
	if err := f.reload(); err != nil {
		return nil, err
	}
	return f, nil
}

func (f *FileSizes) reload() error {
	fi, err := os.Stat(f.path)
	if err != nil {
		f.done(nil, err)
		return err
	}
	if fi.ModTime().Equal(f.modTime) && fi.Size() == f.size {
		return nil
	}
	s, err := LoadSizes(f.path)
	if err == nil && f.database != "" && s.File.Database != f.database {
		err = fmt.Errorf("%s now holds the sizes of database %s, not of %s (sizes_databases); the sizes read before stay in use", f.path, s.File.Database, f.database)
	}
	if err != nil {
		f.done(nil, err)
		return err
	}
	f.modTime, f.size = fi.ModTime(), fi.Size()
	f.done(s, nil)
	return nil
}

// Watch re-reads the file when it changes, looking every interval, until
// stop is called.
func (f *FileSizes) Watch(interval time.Duration) (stop func()) {
	return every(interval, func(context.Context) { f.reload() })
}

// LiveSizes are another target's sizes, read from its live catalog over a
// connection of pgguard's own (the target's monitor: block) every refresh.
// Sizes read longer ago than three refreshes are no longer used.
type LiveSizes struct {
	tracked
	spec    ConnSpec
	refresh time.Duration
	// answers keeps the source planner's answers for a refresh.
	answers plannerCache
	// Breaker is how long, after a connection to the source failed (a
	// read of the sizes or a planner question), the planner is not asked
	// again: each question would wait the connect timeout. Its questions
	// are then estimated as all of the source's rows, never small.
	// plannerBreaker by default.
	Breaker time.Duration
	// asking lets one question at a time be under way in the source: each
	// is a connection of the source's, and a backend busy planning with a
	// lock on the question's tables.
	askOnce sync.Once
	asking  chan struct{}
}

// plannerBreaker is LiveSizes.Breaker's default.
const plannerBreaker = 30 * time.Second

// NewLiveSizes returns the source; Start reads it.
func NewLiveSizes(target string, spec ConnSpec, refresh time.Duration, log *slog.Logger) *LiveSizes {
	return &LiveSizes{tracked: tracked{source: target, log: log, maxAge: 3 * refresh}, spec: spec, refresh: refresh,
		Breaker: plannerBreaker}
}

// plannerCacheSize bounds the planner answers a LiveSizes keeps.
const plannerCacheSize = 1024

// plannerCache keeps the source planner's answers, each for a refresh of
// the sizes, by a hash of the question (a deparsed SELECT that names every
// relation as the source has it, with no parameter: questions with
// parameters are never asked) and of the table: no statement's text, nor
// any literal of it, is kept, and none is ever logged. When full, the
// oldest answer goes. It also holds the circuit breaker: when a connection
// to the source failed last, and until when the planner is not asked.
type plannerCache struct {
	mu        sync.Mutex
	entries   map[[32]byte]plannerAnswer
	order     [][32]byte // oldest first
	openUntil time.Time
	warned    bool // the outage's warning is logged
}

type plannerAnswer struct {
	rows int64
	ok   bool
	at   time.Time
}

func plannerKey(question string, table policy.Table) [32]byte {
	return sha256.Sum256([]byte(table.Schema + "\x00" + table.Name + "\x00" + question))
}

func (c *plannerCache) get(k [32]byte, now time.Time, ttl time.Duration) (plannerAnswer, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	a, ok := c.entries[k]
	if !ok || now.Sub(a.at) >= ttl || now.Before(a.at) {
		return plannerAnswer{}, false
	}
	return a, true
}

func (c *plannerCache) put(k [32]byte, a plannerAnswer) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.entries == nil {
		c.entries = map[[32]byte]plannerAnswer{}
	}
	if _, seen := c.entries[k]; !seen {
		for len(c.order) >= plannerCacheSize {
			delete(c.entries, c.order[0])
			c.order = c.order[1:]
		}
		c.order = append(c.order, k)
	}
	c.entries[k] = a
}

// open reports whether the breaker is open at now.
func (c *plannerCache) open(now time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return now.Before(c.openUntil)
}

// trip opens the breaker until now+d; first is true for the first trip
// since the source last answered (the outage's warning).
func (c *plannerCache) trip(now time.Time, d time.Duration) (first bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.openUntil = now.Add(d)
	first, c.warned = !c.warned, true
	return first
}

// reset closes the breaker after a connection succeeded; it reports
// whether it had tripped.
func (c *plannerCache) reset() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	was := c.warned
	c.openUntil, c.warned = time.Time{}, false
	return was
}

// connectFailed trips the breaker, logging once per outage.
func (l *LiveSizes) connectFailed(err error) {
	d := l.Breaker
	if d <= 0 {
		d = plannerBreaker
	}
	if l.answers.trip(l.clock(), d) && l.log != nil {
		l.log.Warn("borrowed sizes: cannot connect to the source; its planner is not asked again for a while, and a migration's statement on a table empty in the borrowing database is estimated as all of the source's rows (never as small)",
			"source", l.source, "retry_after", d.String(), "err", err)
	}
}

// connected closes the breaker.
func (l *LiveSizes) connected() {
	if l.answers.reset() && l.log != nil {
		l.log.Info("borrowed sizes: the source's planner can be asked again", "source", l.source)
	}
}

// Read connects, exports and disconnects once.
func (l *LiveSizes) Read(ctx context.Context) error {
	timeout := l.spec.ConnectTimeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	cctx, cancel := context.WithTimeout(ctx, timeout)
	conn, err := Connect(cctx, l.spec)
	cancel()
	if err != nil {
		l.connectFailed(err)
		l.done(nil, err)
		return err
	}
	l.connected()
	defer conn.Close(context.Background())
	qctx, qcancel := context.WithTimeout(ctx, 2*time.Minute)
	defer qcancel()
	q := &ConnQuerier{Ctx: qctx, Conn: conn}
	f, err := Export(q, time.Now())
	if err != nil {
		if q.Err != nil {
			err = fmt.Errorf("%v: %w", err, q.Err)
		}
		l.done(nil, err)
		return err
	}
	l.done(NewSizes(f, l.source), nil)
	return nil
}

var _ SourcePlanner = (*LiveSizes)(nil)

// EstimateRowsAt asks the source's planner over a connection of its own,
// opened for the question (only a migration's statement on a table empty
// in the borrowing database asks it). The answer is kept for a refresh
// (the same question is not asked again before the sizes are read
// again); while the breaker is open (a connection failed less than
// Breaker ago) the source is not tried: ok=false at once. One question at
// a time is asked; one that waits for the others longer than the connect
// timeout and 10s is not asked (ok=false).
func (l *LiveSizes) EstimateRowsAt(ctx context.Context, question string, table policy.Table) (int64, bool) {
	key := plannerKey(question, table)
	if a, ok := l.answers.get(key, l.clock(), l.refresh); ok {
		return a.rows, a.ok
	}
	if l.answers.open(l.clock()) {
		l.plannerSkipped()
		return 0, false
	}
	timeout := l.spec.ConnectTimeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout+10*time.Second)
	defer cancel()
	l.askOnce.Do(func() { l.asking = make(chan struct{}, 1) })
	select {
	case l.asking <- struct{}{}:
		defer func() { <-l.asking }()
	case <-ctx.Done():
		// Other questions kept the source busy all that time: all of
		// its rows.
		return 0, false
	}
	if a, ok := l.answers.get(key, l.clock(), l.refresh); ok {
		return a.rows, a.ok // asked while this one waited
	}
	conn, err := Connect(ctx, l.spec)
	if err != nil {
		if ctx.Err() == nil || errors.Is(ctx.Err(), context.DeadlineExceeded) {
			l.connectFailed(err)
		}
		l.plannerSkipped()
		return 0, false
	}
	l.connected()
	defer conn.Close(context.Background())
	q := &ConnQuerier{Ctx: ctx, Conn: conn}
	rows, ok := EstimateRowsOn(ctx, q, question, table)
	if ok || q.Err == nil {
		// An answer, or the source's own "cannot say" (no grant, code of
		// its own): the same until the next refresh. A failed query (the
		// connection lost) is not kept.
		l.answers.put(key, plannerAnswer{rows: rows, ok: ok, at: l.clock()})
	}
	return rows, ok
}

func (l *LiveSizes) plannerSkipped() {
	l.mu.Lock()
	l.plannerUnreachable++
	l.mu.Unlock()
}

// Start reads the sizes now and every refresh until stop is called. Until
// the first read ends (at most its connect timeout and 20s more), Sizes
// waits for it: a migration started as soon as pgguard listens is judged
// with the source's sizes, not its own database's.
func (l *LiveSizes) Start() (stop func()) {
	timeout := l.spec.ConnectTimeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	l.mu.Lock()
	if l.firstRead == nil {
		l.firstRead, l.firstWait = make(chan struct{}), timeout+20*time.Second
	}
	l.mu.Unlock()
	return every(l.refresh, func(ctx context.Context) { l.Read(ctx) })
}

// every runs fn now and then every interval until stop is called, which
// waits for a run under way to end.
func every(interval time.Duration, fn func(context.Context)) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			fn(ctx)
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	return func() { cancel(); <-done }
}

package wiretest

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/jackc/pgx/v5"
	"github.com/pgguard/pgguard/internal/testkit/pgtest"
)

// worker owns two clones of the template, one played straight to
// PostgreSQL and one through pgguard, put back after every session with
// the statements' undo SQL (cloning per session costs ~100 ms a database).
type worker struct {
	e               *testEnv
	directDB, viaDB string
	admin           *pgx.Conn // on "postgres": CREATE and DROP DATABASE
	resetDirect     *pgx.Conn
	resetVia        *pgx.Conn
}

func newWorker(e *testEnv) (*worker, error) {
	ctx := context.Background()
	admin, err := pgx.Connect(ctx, e.pg.DSN(pgtest.SuperUser, "postgres"))
	if err != nil {
		return nil, err
	}
	w := &worker{e: e, admin: admin}
	if err := w.fresh(); err != nil {
		w.close()
		return nil, err
	}
	return w, nil
}

// fresh replaces both databases by new clones: after a divergence the two
// sides may no longer be in the same state.
func (w *worker) fresh() error {
	ctx := context.Background()
	w.dropDBs()
	var err error
	for _, db := range []*string{&w.directDB, &w.viaDB} {
		if *db, err = cloneDB(w.admin); err != nil {
			return err
		}
	}
	if w.resetDirect, err = pgx.Connect(ctx, w.e.pg.DSN(pgtest.SuperUser, w.directDB)); err != nil {
		return err
	}
	w.resetVia, err = pgx.Connect(ctx, w.e.pg.DSN(pgtest.SuperUser, w.viaDB))
	return err
}

func (w *worker) dropDBs() {
	ctx := context.Background()
	for _, c := range []*pgx.Conn{w.resetDirect, w.resetVia} {
		if c != nil {
			c.Close(ctx)
		}
	}
	w.resetDirect, w.resetVia = nil, nil
	for _, db := range []string{w.directDB, w.viaDB} {
		if db != "" {
			// A session's backend may still be exiting: FORCE ends it.
			w.admin.Exec(ctx, "DROP DATABASE IF EXISTS "+db+" WITH (FORCE)")
		}
	}
	w.directDB, w.viaDB = "", ""
}

func (w *worker) close() {
	w.dropDBs()
	w.admin.Close(context.Background())
}

// reset undoes what the session's statements may have done, on both sides.
func (w *worker) reset(s *session) error {
	var undo []string
	for _, c := range s.chunks {
		for _, m := range c {
			for _, st := range m.stmts {
				if st.undo != "" && !slices.Contains(undo, st.undo) {
					undo = append(undo, st.undo)
				}
			}
		}
	}
	if len(undo) == 0 {
		return nil
	}
	sql := strings.Join(undo, "; ")
	ctx := context.Background()
	for _, c := range []*pgx.Conn{w.resetDirect, w.resetVia} {
		if _, err := c.Exec(ctx, sql); err != nil {
			return fmt.Errorf("resetting: %s: %w", sql, err)
		}
	}
	return nil
}

// outcome is the result of playing one session on both sides.
type outcome struct {
	// harness is set when the direct run itself did not go as the model
	// predicted: a bug of this test, not of pgguard.
	harness string
	// divergence describes how pgguard's answer differed.
	divergence string
	// via is what the client received through pgguard.
	via []backendMsg
}

func (o outcome) ok() bool { return o.harness == "" && o.divergence == "" }

// sentinel ends every session: whatever pgguard sent too much (a second
// ReadyForQuery) shows up before its answer. It also reads what pgguard's
// own queries could have left in the session, compared like any answer:
// a portal or prepared statement of its own, and lock_timeout with its
// source (pgguard sets it around statements that block writes and must put
// the session's back).
var sentinel = &stmt{sql: "SELECT 'end of session' AS sentinel," +
	" (SELECT count(*) FROM pg_cursors WHERE name LIKE 'pgguard%') AS own_portals," +
	" (SELECT count(*) FROM pg_prepared_statements WHERE name LIKE 'pgguard%') AS own_statements," +
	" current_setting('lock_timeout') AS lock_timeout, (SELECT source FROM pg_settings WHERE name = 'lock_timeout') AS lock_timeout_source"}

// play plays s on both sides at once and compares.
func (w *worker) play(s *session) outcome {
	want := annotate(s)
	if err := w.reset(s); err != nil {
		return outcome{harness: err.Error()}
	}
	var direct, via transcript
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); direct = playSide(w.e.pg.Addr(), w.directDB, s) }()
	go func() { defer wg.Done(); via = playSide(w.e.proxy, w.viaDB, s) }()
	wg.Wait()
	if direct.stall != "" {
		return outcome{harness: "the direct run broke: " + direct.stall}
	}
	if got := statuses(direct.msgs, s.ends()); string(got) != string(want) {
		return outcome{harness: fmt.Sprintf("the model predicted ReadyForQuery statuses %q, PostgreSQL sent %q", want, got)}
	}
	dn, _ := normalize(direct.msgs, false)
	vn, bad := normalize(via.msgs, true)
	var b strings.Builder
	if via.stall != "" {
		fmt.Fprintf(&b, "through pgguard: %s\n", via.stall)
	}
	for _, m := range bad {
		fmt.Fprintln(&b, m)
	}
	b.WriteString(diff(dn, vn))
	return outcome{divergence: b.String(), via: via.msgs}
}

// statuses lists the ReadyForQuery statuses of a session's chunks: not
// the startup's (the first) nor the sentinel's (the last).
func statuses(msgs []backendMsg, terminated bool) []byte {
	var st []byte
	for _, m := range msgs {
		if m.typ == 'Z' && len(m.body) == 1 {
			st = append(st, m.body[0])
		}
	}
	if len(st) < 2 {
		return nil
	}
	if terminated {
		return st[1:]
	}
	return st[1 : len(st)-1]
}

// playSide plays s on one side: through pgguard when addr is the proxy's.
func playSide(addr, db string, s *session) transcript {
	var tr transcript
	rc, err := dial(addr, db, &tr)
	if err != nil {
		tr.stall = err.Error()
		return tr
	}
	defer rc.close()
	direct := addr == env.pg.Addr()
	for i, c := range s.chunks {
		e := c.expect()
		if i < len(s.ready) {
			e.ready = s.ready[i]
		}
		if err := rc.play(c.encode(direct), e, &tr); err != nil {
			tr.stall = fmt.Sprintf("write %d: %v", i+1, err)
			return tr
		}
	}
	if s.ends() {
		// Terminated: the answers came before the end of the connection.
		if err := rc.eof(); err != nil {
			tr.stall = fmt.Sprintf("after Terminate: %v", err)
		}
		return tr
	}
	end := chunk{query(sentinel)}
	if err := rc.play(end.encode(direct), end.expect(), &tr); err != nil {
		tr.stall = fmt.Sprintf("sentinel query: %v", err)
	}
	return tr
}

// workerPool hands out workers to parallel subtests, creating them on
// demand, so that each pair of databases is used by one session at a time.
type workerPool struct {
	e    *testEnv
	mu   sync.Mutex
	idle []*worker
	all  []*worker
}

func newWorkerPool(e *testEnv) *workerPool { return &workerPool{e: e} }

func (p *workerPool) get() (*worker, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if n := len(p.idle); n > 0 {
		w := p.idle[n-1]
		p.idle = p.idle[:n-1]
		return w, nil
	}
	w, err := newWorker(p.e)
	if err != nil {
		return nil, err
	}
	p.all = append(p.all, w)
	return w, nil
}

func (p *workerPool) put(w *worker) {
	p.mu.Lock()
	p.idle = append(p.idle, w)
	p.mu.Unlock()
}

func (p *workerPool) close() {
	for _, w := range p.all {
		w.close()
	}
}

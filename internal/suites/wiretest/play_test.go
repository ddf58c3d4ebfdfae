package wiretest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

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
	// Second sessions on each side's database, straight to PostgreSQL:
	// one holds locks, one sends NOTIFYs.
	peers map[string]*peerConns
}

type peerConns struct{ locker, notifier *pgx.Conn }

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
	if w.resetVia, err = pgx.Connect(ctx, w.e.pg.DSN(pgtest.SuperUser, w.viaDB)); err != nil {
		return err
	}
	w.peers = map[string]*peerConns{}
	for _, db := range []string{w.directDB, w.viaDB} {
		p := &peerConns{}
		if p.locker, err = pgx.Connect(ctx, w.e.pg.DSN(pgtest.SuperUser, db)); err != nil {
			return err
		}
		if p.notifier, err = pgx.Connect(ctx, w.e.pg.DSN(pgtest.SuperUser, db)); err != nil {
			return err
		}
		w.peers[db] = p
	}
	return nil
}

func (w *worker) dropDBs() {
	ctx := context.Background()
	for _, c := range []*pgx.Conn{w.resetDirect, w.resetVia} {
		if c != nil {
			c.Close(ctx)
		}
	}
	for _, p := range w.peers {
		for _, c := range []*pgx.Conn{p.locker, p.notifier} {
			if c != nil {
				c.Close(ctx)
			}
		}
	}
	w.resetDirect, w.resetVia, w.peers = nil, nil, nil
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
	for _, p := range s.peers {
		if p.kind == peerWriter {
			undo = append(undo, peerWriterUndo)
		}
	}
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
//
// It also lists every cursor and prepared statement left open (the
// client's own must be there alike), and what the transaction left open
// shows: whether it has an xid, its isolation, statement_timeout.
var sentinel = &stmt{sql: "SELECT 'end of session' AS sentinel," +
	" (SELECT count(*) FROM pg_cursors WHERE name LIKE 'pgguard%') AS own_portals," +
	" (SELECT count(*) FROM pg_prepared_statements WHERE name LIKE 'pgguard%') AS own_statements," +
	" current_setting('lock_timeout') AS lock_timeout, (SELECT source FROM pg_settings WHERE name = 'lock_timeout') AS lock_timeout_source," +
	" (SELECT string_agg(name || ' hold=' || is_holdable || ' scroll=' || is_scrollable, ', ' ORDER BY name) FROM pg_cursors) AS cursors," +
	// A statement pgguard prepared as its CONCURRENTLY rewrite is listed
	// so: the rewrite itself is what pgguard does, and says so.
	" (SELECT string_agg(name || ' ' || replace(statement, ' CONCURRENTLY', ''), ', ' ORDER BY name) FROM pg_prepared_statements) AS statements," +
	" pg_current_xact_id_if_assigned() IS NOT NULL AS has_xid, current_setting('transaction_isolation') AS isolation," +
	" current_setting('statement_timeout') AS statement_timeout"}

// observedMsg is the type of the lines the harness adds to a transcript:
// what a second connection saw of the session's backend.
const observedMsg = '#'

// observe looks at the session's backend from a second connection while
// the client is idle: its state, and whether it holds a snapshot
// (backend_xmin: an open portal, a REPEATABLE READ snapshot) or an xid.
// pgguard's own queries must leave neither.
//
// listening: the session LISTENs to the second session's NOTIFYs; idle,
// its backend then reads them in a transaction of its own, which holds a
// snapshot for a moment, so backend_xmin is not looked at.
func observe(c *pgx.Conn, pid int, when string, listening bool) backendMsg {
	var state string
	var xmin, xid bool
	err := c.QueryRow(context.Background(), "SELECT state, backend_xmin IS NOT NULL, backend_xid IS NOT NULL FROM pg_stat_activity WHERE pid = $1", pid).Scan(&state, &xmin, &xid)
	text := fmt.Sprintf("%s: state=%s backend_xmin=%t backend_xid=%t", when, state, xmin, xid)
	if listening && state == "idle" {
		text = fmt.Sprintf("%s: state=%s backend_xid=%t", when, state, xid)
	}
	if err != nil {
		text = fmt.Sprintf("%s: %v", when, err)
	}
	return backendMsg{typ: observedMsg, body: []byte(text)}
}

// peerWriterUndo puts back the row the second session's writer changes.
const peerWriterUndo = "UPDATE small SET v = 'v2' WHERE id = 2"

// play plays s on both sides at once and compares. The two sides go
// write by write in step: what pgguard did with a write (learn) can
// change what the direct run must send in the next ones.
func (w *worker) play(s *session) outcome {
	annotate(s)
	if err := w.reset(s); err != nil {
		return outcome{harness: err.Error()}
	}
	direct := &side{addr: w.e.pg.Addr(), db: w.directDB, s: s, obs: w.resetDirect, peers: w.peers[w.directDB], direct: true}
	via := &side{addr: w.e.proxy, db: w.viaDB, s: s, obs: w.resetVia, peers: w.peers[w.viaDB]}
	both := func(f func(*side)) {
		var wg sync.WaitGroup
		wg.Add(2)
		go func() { defer wg.Done(); f(direct) }()
		go func() { defer wg.Done(); f(via) }()
		wg.Wait()
	}
	both((*side).start)
	for i := range s.chunks {
		if direct.tr.stall != "" {
			break
		}
		// A side that broke plays nothing more (side.chunk); the other
		// goes on, so that the diff shows all of the direct run.
		from := len(via.tr.msgs)
		both(func(sd *side) { sd.chunk(i) })
		if via.tr.stall == "" && learn(s.chunks[i], via.tr.msgs[from:]) {
			annotate(s)
		}
	}
	both((*side).finish)
	want := annotate(s)
	if direct.tr.stall != "" {
		return outcome{harness: "the direct run broke: " + direct.tr.stall}
	}
	if got := statuses(direct.tr.msgs, s.ends()); string(got) != string(want) {
		return outcome{harness: fmt.Sprintf("the model predicted ReadyForQuery statuses %q, PostgreSQL sent %q", want, got)}
	}
	dn, _ := normalize(direct.tr.msgs, false)
	vn, bad := normalize(via.tr.msgs, true)
	dn0 := dn
	dn, dPeer, dIllegal := peerNotifications(dn)
	vn, vPeer, vIllegal := peerNotifications(vn)
	if len(dIllegal) > 0 {
		return outcome{harness: "PostgreSQL delivered a NOTIFY where the harness thinks it cannot: " + strings.Join(dIllegal, "; ") + "\n" + listing(dn0)}
	}
	var b strings.Builder
	bad = append(bad, vIllegal...)
	if !slices.Equal(dPeer, vPeer) {
		fmt.Fprintf(&b, "the second session's NOTIFYs: direct %q, through pgguard %q\n", dPeer, vPeer)
	}
	if via.tr.stall != "" {
		fmt.Fprintf(&b, "through pgguard: %s\n", via.tr.stall)
	}
	for _, m := range bad {
		fmt.Fprintln(&b, m)
	}
	b.WriteString(diff(dn, vn))
	return outcome{divergence: b.String(), via: via.tr.msgs}
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

// side plays a session on one side: through pgguard when addr is the
// proxy's. obs is a second connection to db that looks at the session's
// backend; peers do the second session's part.
type side struct {
	addr, db string
	s        *session
	obs      *pgx.Conn
	peers    *peerConns
	direct   bool

	tr        transcript
	rc        *rawConn
	pid       int
	peerWG    sync.WaitGroup
	peerMu    sync.Mutex
	peerErr   error
	lastBurst chan struct{}
	lastLock  chan struct{}
}

func (sd *side) start() {
	rc, err := dial(sd.addr, sd.db, &sd.tr)
	if err != nil {
		sd.tr.stall = err.Error()
		return
	}
	sd.rc = rc
	if sd.pid, err = clientPid(sd.obs); err != nil {
		sd.tr.stall = err.Error()
	}
}

// chunk plays write i, the second session's actions that start with it
// first.
func (sd *side) chunk(i int) {
	s, tr := sd.s, &sd.tr
	if tr.stall != "" {
		return
	}
	for _, p := range s.peers {
		if p.before == i {
			if err := startPeer(p, sd.peers, &sd.peerWG, &sd.lastBurst, &sd.lastLock, func(err error) {
				sd.peerMu.Lock()
				sd.peerErr = errors.Join(sd.peerErr, err)
				sd.peerMu.Unlock()
			}); err != nil {
				tr.stall = fmt.Sprintf("second session before write %d: %v", i+1, err)
				return
			}
		}
	}
	c := s.chunks[i]
	e := c.expect()
	if i < len(s.ready) {
		e.ready = s.ready[i]
	}
	if err := sd.rc.play(c.encode(sd.direct), e, tr); err != nil {
		tr.stall = fmt.Sprintf("write %d: %v", i+1, err)
		return
	}
	if i < len(s.idleIn) && s.idleIn[i] != 0 && !(i == len(s.chunks)-1 && s.ends()) {
		tr.msgs = append(tr.msgs, observe(sd.obs, sd.pid, fmt.Sprintf("idle in transaction after write %d", i+1), s.notifies()))
	}
}

// finish waits for the second session, then ends the session: the end of
// the connection after a Terminate, else the sentinel.
func (sd *side) finish() {
	sd.peerWG.Wait()
	if sd.rc == nil {
		return
	}
	defer sd.rc.close()
	s, tr := sd.s, &sd.tr
	if tr.stall != "" {
		return
	}
	if sd.peerErr != nil {
		tr.stall = fmt.Sprintf("second session: %v", sd.peerErr)
		return
	}
	if s.ends() {
		// Terminated: the answers came before the end of the connection.
		if err := sd.rc.eof(); err != nil {
			tr.stall = fmt.Sprintf("after Terminate: %v", err)
		}
		return
	}
	tr.msgs = append(tr.msgs, observe(sd.obs, sd.pid, "at the end", s.notifies()))
	end := chunk{query(sentinel)}
	if err := sd.rc.play(end.encode(sd.direct), end.expect(), tr); err != nil {
		tr.stall = fmt.Sprintf("sentinel query: %v", err)
	}
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

// clientApp is the application_name the sessions start with: the second
// connection finds the session's backend by it.
const clientApp = "wire-client"

// clientPid finds the backend of the session just started on obs's
// database.
func clientPid(obs *pgx.Conn) (int, error) {
	// The previous session's backend may still be on its way out.
	var pid int32
	err := obs.QueryRow(context.Background(), "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND application_name = $1 ORDER BY backend_start DESC LIMIT 1", clientApp).Scan(&pid)
	return int(pid), err
}

// startPeer starts a second session's action: a writer or locker has
// its lock when it returns; the rest runs in the background (wg), errors
// reported to fail.
//
// NOTIFY bursts go one after the other (prev is the one before), so that
// their order is the same on both sides.
func startPeer(p peerAction, c *peerConns, wg *sync.WaitGroup, prev, prevLock *chan struct{}, fail func(error)) error {
	ctx := context.Background()
	switch p.kind {
	case peerNotify:
		wg.Add(1)
		wait, done := *prev, make(chan struct{})
		*prev = done
		go func() {
			defer wg.Done()
			defer close(done)
			if wait != nil {
				<-wait
			}
			time.Sleep(p.delay)
			for k := range p.count {
				if k > 0 {
					time.Sleep(p.gap)
				}
				if _, err := c.notifier.Exec(ctx, fmt.Sprintf("NOTIFY %s, '%s%d'", peerChannel, peerPayload, p.first+k)); err != nil {
					fail(err)
					return
				}
			}
		}()
		return nil
	case peerWriter, peerLocker:
		lock := "UPDATE small SET v = 'peer' WHERE id = 2"
		if p.kind == peerLocker {
			lock = "LOCK TABLE t1 IN ACCESS SHARE MODE"
		}
		if *prevLock != nil {
			<-*prevLock // the one connection commits the lock before first
		}
		if _, err := c.locker.Exec(ctx, "BEGIN; "+lock); err != nil {
			c.locker.Exec(ctx, "ROLLBACK")
			return err
		}
		done := make(chan struct{})
		*prevLock = done
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer close(done)
			time.Sleep(p.hold)
			if _, err := c.locker.Exec(ctx, "COMMIT"); err != nil {
				fail(err)
			}
		}()
	}
	return nil
}

// listing prints a normalised transcript, one message a line.
func listing(ns []norm) string {
	var b strings.Builder
	for i, n := range ns {
		text := n.String()
		if len(text) > 160 {
			text = text[:150] + "..."
		}
		fmt.Fprintf(&b, "    %d %s\n", i, text)
	}
	return b.String()
}

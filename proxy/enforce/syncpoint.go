package enforce

import (
	"sync"
	"sync/atomic"

	"github.com/pgguard/pgguard/internal/wire"
	"github.com/pgguard/pgguard/policy"

	"github.com/pgguard/pgguard/internal/observe"
)

// A syncPoint is one Query, Sync or FunctionCall sent to the server: the
// server answers each with exactly one ReadyForQuery. Most need nothing but
// counting; the few that pgguard shapes (rejections, rewrites, statements it
// sent itself, DDL it may retry) carry instructions for the server-to-client
// loop, queued by sequence number. The package doc draws their states.
type syncPoint struct {
	seq uint64
	// queued is set once the sync point is in the queue (amend); owned by
	// the client-to-server loop.
	queued bool
	// pending are changes amend left for the server-to-client loop, which
	// makes them (applyPending) before it treats the next message.
	pendingMu sync.Mutex
	pending   []func(*syncPoint)
	// mode is how the answer reaches the client. It is set before the
	// sync point is queued or in amend; after that only the
	// server-to-client loop, holding Conns.ToClientMu, reads or changes it
	// (hold → stream).
	mode mode
	// rows collects the DataRows of a swallowed query (text columns), up
	// to maxSwallowedRows bytes; rowsLost says some did not fit.
	rows     [][]*string
	rowBytes int
	rowsLost bool
	// notices are sent to the client before the first message of the answer.
	notices     [][]byte
	noticesSent bool
	// swap replaces the server's ErrorResponse whose message holds marker.
	swap   *wire.PGError
	marker string
	// retry is set in mode hold: the statement to send again, and the
	// answer held back until it is known whether a lock_timeout failure
	// (55P03) is retried.
	retry *retry
	// effects are what the statements do to the memory of the
	// transaction (tables created, NOT VALID constraints, ACCESS
	// EXCLUSIVE locks, savepoints), in their order; applied on success.
	effects []policy.TxEffect
	// holdReady keeps the ReadyForQuery from the client: the waiter sends
	// it once its follow-up work (restoring lock_timeout, cleaning up an
	// INVALID index) is done, so that the client cannot start anything (on
	// any connection) before that.
	holdReady bool
	// done, when set, is closed when the sync point ends, with its outcome
	// in out; the client-to-server loop waits on it before it reads more
	// from the client.
	done     chan struct{}
	out      outcome
	doneSent bool // owned by the server-to-client loop

	// events are reported once the answer is complete, with tag (the
	// first CommandComplete) and the outcome.
	events []*observe.StatementEvent
	tag    string

	// The outcome so far.
	errCode, errMsg string
	swapped         bool
}

// mode is how the answer of a special sync point reaches the client; the
// package doc draws the transitions.
type mode uint8

const (
	// stream: each message goes to the client as it streams in, after the
	// sync point's notices; an ErrorResponse raised by the refusal marker
	// is replaced by pgguard's own (swap).
	stream mode = iota
	// swallow: pgguard's own query. Nothing reaches the client but
	// ParameterStatus; DataRows are kept for the waiter, up to
	// maxSwallowedRows.
	swallow
	// hold: DDL in autocommit that may be retried after a lock_timeout
	// failure. The answer is kept (up to Config.MaxHeldAnswer) until it is
	// final; past the bound it is released and the sync point streams.
	hold
)

// applyPending makes the changes amend left; the server-to-client loop
// calls it holding Conns.ToClientMu.
func (sp *syncPoint) applyPending() {
	sp.pendingMu.Lock()
	fs := sp.pending
	sp.pending = nil
	sp.pendingMu.Unlock()
	for _, f := range fs {
		f(sp)
	}
}

// finish records the outcome and wakes whoever waits for it.
func (sp *syncPoint) finish(out outcome) {
	if sp.done != nil && !sp.doneSent {
		sp.doneSent = true
		sp.out = out
		close(sp.done)
	}
}

// outcome is how a sync point ended.
type outcome struct {
	status  byte // ReadyForQuery status
	errCode string
	errMsg  string
	rows    [][]*string
	closed  bool // the session ended first
	// skipped: the server skipped the sync message (a Query or
	// FunctionCall behind a failed batch): no ReadyForQuery came for it.
	skipped bool
}

// syncQueue holds the special sync points in order. The count lets the hot
// path skip the lock when there are none.
type syncQueue struct {
	n  atomic.Int32
	mu sync.Mutex
	q  []*syncPoint
}

func (q *syncQueue) push(sp *syncPoint) {
	q.mu.Lock()
	if n := len(q.q); n > 0 && q.q[n-1].seq >= sp.seq {
		q.mu.Unlock()
		// Two instructions for one answer: the relay would apply one
		// of them to the wrong messages.
		panic("pgguard bug: sync point queued out of order")
	}
	q.q = append(q.q, sp)
	q.n.Add(1)
	q.mu.Unlock()
}

// head returns the special sync point with sequence seq, if it is first.
func (q *syncQueue) head(seq uint64) *syncPoint {
	if q.n.Load() == 0 {
		return nil
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.q) > 0 && q.q[0].seq == seq {
		return q.q[0]
	}
	return nil
}

func (q *syncQueue) pop() {
	q.mu.Lock()
	q.q[0] = nil
	q.q = q.q[1:]
	q.n.Add(-1)
	q.mu.Unlock()
}

// drain ends every queued sync point whose waiter still waits. It runs
// once the server-to-client loop has stopped.
func (q *syncQueue) drain() {
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, sp := range q.q {
		sp.finish(outcome{closed: true})
	}
	q.q = nil
	q.n.Store(0)
}

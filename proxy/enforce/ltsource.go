package enforce

import (
	"sync"
	"sync/atomic"

	"github.com/pgguard/pgguard/policy"
)

// ltFollow follows whether the client set lock_timeout (its source is
// 'session'), with the outcome of each transaction: policy.SettingSource
// told what each sync point's statements do, once the server answered it.
// checkLockTimeout needs it before LOCK TABLE in a transaction block,
// where pgguard asks with SHOW, which gives no source, and must put the
// session's value back the way it was: RESET when nothing of the
// client's that still counts set it, else SET.
//
// The client-to-server loop lists the ops of the statements it sends
// (noteLockTimeout) and queues them with their sync point (OnSync); the
// server-to-client loop counts the sync point's CommandCompletes and
// ErrorResponse (AccountServer) and settles it on its ReadyForQuery.
// While the model is Clean and nothing is queued, neither loop does more
// than a load of watch and a scan of the statement for the names.
type ltFollow struct {
	mu    sync.Mutex
	queue []ltEntry
	// watch: the queue holds something or the model is not Clean;
	// session: the model's Session, as of the last sync point settled.
	watch, session atomic.Bool
	src            policy.SettingSource
}

// ltEntry is what a client's sync point does: ops for its statements,
// after lead statements that were not listed (a batch's Parses before
// the first one that named lock_timeout).
type ltEntry struct {
	seq  uint64
	ops  []policy.GUCOp
	lead int
}

// noteLockTimeout lists what a Query (query) or a Parse's statement does
// to lock_timeout's source, for the sync point that ends it.
func (m *Machine) noteLockTimeout(text string, query bool) {
	if !m.lt.watch.Load() && len(m.ltOps) == 0 && !policy.MentionsLockTimeout(text, m.lt.session.Load()) {
		if !query {
			m.ltLead++
		}
		return
	}
	m.ltOps = append(m.ltOps, policy.LockTimeoutOps(text)...)
}

// queueLockTimeout hands the ops listed since the last sync message to
// sync point seq, the client's.
func (m *Machine) queueLockTimeout(seq uint64) {
	lead := m.ltLead
	m.ltLead = 0
	if len(m.ltOps) == 0 && !m.lt.watch.Load() {
		return
	}
	ops := m.ltOps
	m.ltOps = nil
	m.lt.mu.Lock()
	m.lt.queue = append(m.lt.queue, ltEntry{seq: seq, ops: ops, lead: lead})
	m.lt.watch.Store(true)
	m.lt.mu.Unlock()
}

// settleLockTimeout applies sync point seq's outcome, on its
// ReadyForQuery: start is the transaction status before it, end the
// ReadyForQuery's. A sync point of pgguard's own, or one the server
// skipped, has no entry; the status still tells the model whether a
// transaction ended.
func (m *Machine) settleLockTimeout(seq uint64, start, end byte) {
	done, failed := m.ltDone, m.ltFailed
	m.ltDone, m.ltFailed = 0, false
	if !m.lt.watch.Load() {
		return
	}
	m.lt.mu.Lock()
	defer m.lt.mu.Unlock()
	for len(m.lt.queue) > 0 && m.lt.queue[0].seq < seq {
		m.lt.queue = m.lt.queue[1:] // skipped: none of it ran
	}
	var e ltEntry
	if len(m.lt.queue) > 0 && m.lt.queue[0].seq == seq {
		e, m.lt.queue = m.lt.queue[0], m.lt.queue[1:]
	}
	m.lt.src.Settle(e.ops, done-e.lead, failed, start, end)
	m.lt.watch.Store(len(m.lt.queue) > 0 || !m.lt.src.Clean())
	m.lt.session.Store(m.lt.src.Session())
}

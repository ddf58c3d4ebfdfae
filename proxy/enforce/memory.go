package enforce

import (
	"errors"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"
)

// Memory is the budget of bytes that all sessions together buffer for
// statements pgguard reads whole to judge (readInspected). A reader pays as
// its buffer grows, that is as bytes arrive; what it drops stays charged as
// garbage until a garbage collection has returned it to the operating
// system, so the budget follows what the process really holds.
//
// When the budget is spent, a reader waits (and reads nothing more from
// its client, which the TCP window then holds back) until memory frees, at
// most Wait; then its statement gets ERROR 53200. Waiters are served oldest
// message first. When every reader holding memory waits, nothing would ever
// free: the youngest waiter that holds memory gets 53200 and its memory goes
// to the others.
//
// Messages of at most smallMessage bytes are not charged: each session
// keeps one such buffer, bounded by the number of sessions.
type Memory struct {
	limit int64
	wait  time.Duration
	// collect returns garbage to the operating system; debug.FreeOSMemory.
	collect func()

	mu sync.Mutex
	// used is what readers hold plus garbage not yet collected.
	used, garbage int64
	// holding counts readers that hold bytes; waiting are those that wait,
	// oldest message first.
	holding    int
	waiting    []*memReader
	collecting bool
	lastRun    time.Time
	seq        uint64
	quiet      *time.Timer

	inUse, peak atomic.Int64
	refused     atomic.Int64
}

// smallMessage is the largest statement message read without the budget,
// into the session's own reused buffer.
const smallMessage = 64 << 10

// quietCollect is how long after the last release the garbage left is
// returned to the operating system, when nobody waits for it.
const quietCollect = 5 * time.Second

// minCollectInterval spaces the collections that waiters ask for.
const minCollectInterval = 100 * time.Millisecond

// errNoMemory is a statement message that the budget could not hold.
var errNoMemory = errors.New("statement memory exhausted")

// NewMemory returns a budget of limit bytes; a reader waits at most wait
// for memory before its statement is refused.
func NewMemory(limit int64, wait time.Duration) *Memory {
	mm := &Memory{limit: limit, wait: wait, collect: debug.FreeOSMemory}
	mm.quiet = time.AfterFunc(time.Hour, mm.collectQuiet)
	mm.quiet.Stop()
	return mm
}

// Limit returns the budget in bytes.
func (mm *Memory) Limit() int64 { return mm.limit }

// InUse returns the bytes charged now: held by readers, or dropped and not
// yet returned to the operating system.
func (mm *Memory) InUse() int64 { return mm.inUse.Load() }

// Peak returns the most bytes ever charged at once.
func (mm *Memory) Peak() int64 { return mm.peak.Load() }

// Refused returns how many statement messages got ERROR 53200.
func (mm *Memory) Refused() int64 { return mm.refused.Load() }

// fits reports whether a reader that needs peak bytes at once could ever
// be served.
func (mm *Memory) fits(peak int) bool { return int64(peak) <= mm.limit }

// reader starts the accounting of one statement message; done ends its
// waits with the session.
func (mm *Memory) reader(done <-chan struct{}) *memReader {
	mm.mu.Lock()
	mm.seq++
	r := &memReader{mm: mm, seq: mm.seq, done: done}
	mm.mu.Unlock()
	return r
}

// memReader is the account of one statement message being read; it is a
// wire.Reserver. Only its session's client-to-server loop calls it.
type memReader struct {
	mm   *Memory
	seq  uint64 // the message's age: lower is older
	done <-chan struct{}
	// Guarded by mm.mu.
	held    int64
	need    int64
	wake    chan struct{}
	granted bool
	victim  bool
}

// Reserve charges n bytes, waiting for them if the budget is spent.
func (r *memReader) Reserve(n int) error {
	mm := r.mm
	mm.mu.Lock()
	if len(mm.waiting) == 0 && mm.used+int64(n) <= mm.limit {
		mm.grantLocked(r, int64(n))
		mm.mu.Unlock()
		return nil
	}
	r.need, r.granted, r.victim = int64(n), false, false
	r.wake = make(chan struct{}, 1)
	i := len(mm.waiting)
	for i > 0 && mm.waiting[i-1].seq > r.seq {
		i--
	}
	mm.waiting = append(mm.waiting, nil)
	copy(mm.waiting[i+1:], mm.waiting[i:])
	mm.waiting[i] = r
	mm.settleLocked()
	mm.mu.Unlock()

	t := time.NewTimer(mm.wait)
	defer t.Stop()
	var closed bool
	select {
	case <-r.wake:
	case <-t.C:
	case <-r.done:
		closed = true
	}
	mm.mu.Lock()
	defer mm.mu.Unlock()
	if r.granted {
		return nil
	}
	if !r.victim {
		mm.unqueueLocked(r)
		// The ones behind it may fit now.
		mm.settleLocked()
	}
	if closed {
		return errSessionClosed
	}
	return errNoMemory
}

// Release drops n bytes the reader held; they stay charged until collected.
func (r *memReader) Release(n int) {
	mm := r.mm
	mm.mu.Lock()
	mm.releaseLocked(r, int64(n))
	mm.mu.Unlock()
}

// finish drops everything the reader holds: its message was sent, refused
// or abandoned.
func (r *memReader) finish() {
	if r == nil {
		return
	}
	mm := r.mm
	mm.mu.Lock()
	mm.releaseLocked(r, r.held)
	mm.mu.Unlock()
}

func (mm *Memory) grantLocked(r *memReader, n int64) {
	if r.held == 0 && n > 0 {
		mm.holding++
	}
	r.held += n
	mm.used += n
	mm.inUse.Store(mm.used)
	if mm.used > mm.peak.Load() {
		mm.peak.Store(mm.used)
	}
}

func (mm *Memory) releaseLocked(r *memReader, n int64) {
	if n <= 0 {
		return
	}
	r.held -= n
	if r.held == 0 {
		mm.holding--
	}
	mm.garbage += n
	mm.quiet.Reset(quietCollect)
	mm.settleLocked()
}

func (mm *Memory) unqueueLocked(r *memReader) {
	for i, w := range mm.waiting {
		if w == r {
			mm.waiting = append(mm.waiting[:i], mm.waiting[i+1:]...)
			return
		}
	}
}

// settleLocked serves the waiters that fit, oldest first, and otherwise
// frees memory for them: it collects the garbage, or, when every reader
// holding memory waits and there is no garbage left, refuses the youngest.
func (mm *Memory) settleLocked() {
	for len(mm.waiting) > 0 {
		r := mm.waiting[0]
		if mm.used+r.need > mm.limit {
			break
		}
		mm.waiting = mm.waiting[1:]
		mm.grantLocked(r, r.need)
		r.granted = true
		r.wake <- struct{}{}
	}
	if len(mm.waiting) == 0 {
		mm.waiting = nil
		return
	}
	if mm.collecting {
		return
	}
	if mm.garbage > 0 {
		mm.collecting = true
		go mm.collectGarbage()
		return
	}
	waitingHolders := 0
	for _, w := range mm.waiting {
		if w.held > 0 {
			waitingHolders++
		}
	}
	if waitingHolders < mm.holding {
		// A reader that does not wait will finish or grow and release.
		return
	}
	// The youngest waiter that holds memory: refusing one that holds none
	// would free nothing, and nothing else would happen to serve the rest
	// until their waits ran out.
	for i := len(mm.waiting) - 1; i >= 0; i-- {
		if v := mm.waiting[i]; v.held > 0 {
			mm.waiting = append(mm.waiting[:i], mm.waiting[i+1:]...)
			v.victim = true
			v.wake <- struct{}{}
			return
		}
	}
}

// collectGarbage returns the garbage charged when it starts to the
// operating system and serves the waiters with what that freed.
func (mm *Memory) collectGarbage() {
	mm.mu.Lock()
	wait := minCollectInterval - time.Since(mm.lastRun)
	mm.mu.Unlock()
	if wait > 0 {
		time.Sleep(wait)
	}
	mm.mu.Lock()
	g := mm.garbage
	mm.mu.Unlock()
	mm.collect()
	mm.mu.Lock()
	mm.lastRun = time.Now()
	mm.garbage -= g
	mm.used -= g
	mm.inUse.Store(mm.used)
	mm.collecting = false
	mm.settleLocked()
	mm.mu.Unlock()
}

// collectQuiet returns what is left once releases stop.
func (mm *Memory) collectQuiet() {
	mm.mu.Lock()
	if mm.collecting || mm.garbage == 0 {
		mm.mu.Unlock()
		return
	}
	mm.collecting = true
	mm.mu.Unlock()
	mm.collectGarbage()
}

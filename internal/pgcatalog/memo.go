package pgcatalog

import (
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pgguard/pgguard/policy"
)

// MemoLifetime is how long a session keeps a table's rules and triggers
// and a function's body before asking again, when it runs no DDL itself:
// another session's CREATE TRIGGER counts within that time.
const MemoLifetime = 10 * time.Second

// SessionMemo keeps, for one session, the answers that change only with
// DDL: a table's rules and triggers (TableEffects) and the bodies of the
// functions a statement calls (FunctionBodies). A migration session asks
// them for each INSERT, UPDATE, DELETE and call it sends, which would
// otherwise cost a round trip (and a planning of the catalog query) per
// statement: a seed of a thousand INSERTs, a thousand questions. The
// session forgets everything when it runs DDL (Forget) and each answer
// after MemoLifetime. Safe for concurrent use.
type SessionMemo struct {
	kept    atomic.Bool // anything kept: a cheap test for sessions that never ask
	mu      sync.Mutex
	effects map[string]memoEntry[policy.Effects]
	bodies  map[string]memoEntry[[]policy.Function]
	now     func() time.Time // for tests
}

type memoEntry[T any] struct {
	v  T
	at time.Time
}

// Forget drops every answer kept: the session is about to run DDL, which
// may create or drop a rule, a trigger or a function, or to change its
// search_path, by which unqualified names were looked up.
func (m *SessionMemo) Forget() {
	if m == nil || !m.kept.Load() {
		return
	}
	m.mu.Lock()
	m.effects, m.bodies = nil, nil
	m.kept.Store(false)
	m.mu.Unlock()
}

// Kept reports whether the memo holds anything (so that Forget has work).
func (m *SessionMemo) Kept() bool { return m != nil && m.kept.Load() }

func (m *SessionMemo) clock() time.Time {
	if m.now != nil {
		return m.now()
	}
	return time.Now()
}

func memoGet[T any](m *SessionMemo, table map[string]memoEntry[T], key string) (T, bool) {
	var zero T
	if m == nil {
		return zero, false
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := table[key]
	if !ok || m.clock().Sub(e.at) >= MemoLifetime {
		return zero, false
	}
	return e.v, true
}

func (m *SessionMemo) effectsOf(table, event string) (policy.Effects, bool) {
	if m == nil {
		return policy.Effects{}, false
	}
	return memoGet(m, m.effects, table+"\x00"+event)
}

func (m *SessionMemo) keepEffects(table, event string, e policy.Effects) {
	if m == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.effects == nil || len(m.effects) >= memoMax {
		m.effects = map[string]memoEntry[policy.Effects]{}
	}
	m.effects[table+"\x00"+event] = memoEntry[policy.Effects]{e, m.clock()}
	m.kept.Store(true)
}

func (m *SessionMemo) bodiesOf(names []string) ([]policy.Function, bool) {
	if m == nil {
		return nil, false
	}
	return memoGet(m, m.bodies, strings.Join(names, "\x00"))
}

func (m *SessionMemo) keepBodies(names []string, fs []policy.Function) {
	if m == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.bodies == nil || len(m.bodies) >= memoMax {
		m.bodies = map[string]memoEntry[[]policy.Function]{}
	}
	m.bodies[strings.Join(names, "\x00")] = memoEntry[[]policy.Function]{fs, m.clock()}
	m.kept.Store(true)
}

// memoMax bounds each table of a session's memo: past it, the table starts
// afresh.
const memoMax = 256

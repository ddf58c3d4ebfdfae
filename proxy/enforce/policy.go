package enforce

import (
	"sync/atomic"

	"github.com/pgguard/pgguard/policy"
)

// Policy holds the engine that judges statements. Reloading swaps it
// atomically; a statement is judged by the engine current when it arrives.
type Policy struct{ p atomic.Pointer[policy.Engine] }

// NewPolicy returns a Policy holding e.
func NewPolicy(e *policy.Engine) *Policy {
	p := &Policy{}
	p.p.Store(e)
	return p
}

// Engine returns the current engine.
func (p *Policy) Engine() *policy.Engine { return p.p.Load() }

// Swap installs a new engine for statements that arrive from now on.
func (p *Policy) Swap(e *policy.Engine) { p.p.Store(e) }

package proxy

import "time"

// Observer is told what pgguard decided and did, for metrics and the audit
// log. Its methods are called from session goroutines and must be quick and
// safe for concurrent use.
type Observer interface {
	// Statement reports a judged statement that was DDL or not simply
	// allowed, once its outcome is known when pgguard waits for it, or at
	// once otherwise (Outcome empty).
	Statement(ev *StatementEvent)
	// LockTimeoutRetry reports a DDL statement retried after 55P03.
	LockTimeoutRetry(target string)
	// ConcurrentCleanup reports an INVALID index dropped after a failed
	// concurrent build.
	ConcurrentCleanup(target string)
}

// StatementEvent describes one judged statement.
type StatementEvent struct {
	Target, User, Database, ApplicationName, ClientAddr string
	SQL                                                 string // as the client sent it
	Rewritten                                           string
	Action                                              string // allow, warn, rewrite, reject
	RuleIDs                                             []string
	DDL                                                 bool
	Duration                                            time.Duration
}

type nopObserver struct{}

func (nopObserver) Statement(*StatementEvent) {}
func (nopObserver) LockTimeoutRetry(string)   {}
func (nopObserver) ConcurrentCleanup(string)  {}

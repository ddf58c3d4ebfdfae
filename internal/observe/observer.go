// Package observe is what pgguard reports about what it saw and did: the
// Observer interface and its statement events, Prometheus metrics and the
// audit log. Nothing in it holds statement text beyond the audit log's
// normalised form, with every literal and comment replaced.
package observe

import "time"

// Observer is told what pgguard saw, decided and did, for metrics and the
// audit log. Its methods are called from session goroutines, some on the
// hot path (StatementsInspected), and must be quick and safe for concurrent
// use. Config.Observer nil means nobody listens.
type Observer interface {
	// ConnectionOpened reports a client session that passed authentication.
	ConnectionOpened(target string)
	// ConnectionClosed reports its end, with the bytes relayed each way.
	ConnectionClosed(target string, fromClient, fromServer int64)
	// UpstreamConnect reports a connection attempt to the server: how long
	// it took to get the server's first answer, and whether it failed.
	UpstreamConnect(target string, took time.Duration, err error)
	// StatementsInspected counts statements the policy judged, DDL or not.
	StatementsInspected(target string, ddl, other int)
	// Statement reports a statement that was DDL or not simply allowed,
	// once its outcome is known.
	Statement(ev *StatementEvent)
	// LockTimeoutRetry reports a DDL statement retried after 55P03.
	LockTimeoutRetry(target string)
	// ConcurrentCleanup reports an INVALID index dropped after a failed
	// concurrent build.
	ConcurrentCleanup(target string)
	// LockQueueWait reports a statement that waited outside the lock
	// queue for another session (blocker, its application_name), with
	// how long, how many looks, and how it ended (LockQueueOutcome*).
	LockQueueWait(target string, waited time.Duration, looks int, blocker, outcome string)
}

// How a wait outside the lock queue ended.
const (
	// LockQueueClear: the way cleared and the statement was sent.
	LockQueueClear = "clear"
	// LockQueueRefused: still blocked at lock_queue.deadline; refused.
	LockQueueRefused = "refused"
	// LockQueueSent: still blocked at the deadline, sent anyway (mode
	// warn or audit).
	LockQueueSent = "sent"
	// LockQueueClosed: the session ended while it waited.
	LockQueueClosed = "closed"
)

// StatementEvent describes one judged statement (or one Query string, when
// a Query holds several) and its outcome.
type StatementEvent struct {
	Time                                    time.Time // when it arrived
	Target, User, Database, ApplicationName string
	ClientAddr                              string
	SQL                                     string // as the client sent it: normalise before logging
	Rewritten                               string // what ran instead, if rewritten
	Action                                  string // allow, warn, rewrite, reject
	RuleIDs                                 []string
	Findings                                []FindingSummary
	DDL                                     bool
	CommandTag                              string        // from the server's CommandComplete, e.g. "CREATE INDEX"
	SQLState                                string        // "" on success; 42501 when pgguard refused it
	Duration                                time.Duration // from arrival to the server's answer
	// Tool is the migration tool behind the session ("" when unknown);
	// Migration, on the statement that records a migration in the tool's
	// ledger, is the migration's name when the statement carries it.
	Tool, Migration string
	// Records: the statement records a migration in the tool's ledger.
	Records bool
	// LockQueueWait is how long the statement waited outside the lock
	// queue, for LockQueueBlocker (pid and application_name).
	LockQueueWait    time.Duration
	LockQueueBlocker string
	// BuildWaitsFor lists the older sessions a concurrent index build
	// was found, before it started, to wait for in its waiting phases.
	BuildWaitsFor []WaitedSession
}

// WaitedSession is a session whose transaction a concurrent index build
// waits for: it writes the table (a lock that conflicts with SHARE) or
// holds a snapshot in the database. No query text: nothing of it may
// carry a client's literal.
type WaitedSession struct {
	PID             string  `json:"pid"`
	ApplicationName string  `json:"application_name"`
	State           string  `json:"state"`
	AgeSeconds      float64 `json:"transaction_age_seconds"`
	Reason          string  `json:"reason"` // "writes the table", "holds a snapshot"
}

// FindingSummary is one rule that matched, with its action.
type FindingSummary struct {
	RuleID, Action string
	AllowedBy      string // the escape-hatch reason, when an annotation allowed it
}

type Nop struct{}

func (Nop) ConnectionOpened(string)                                  {}
func (Nop) ConnectionClosed(string, int64, int64)                    {}
func (Nop) UpstreamConnect(string, time.Duration, error)             {}
func (Nop) StatementsInspected(string, int, int)                     {}
func (Nop) Statement(*StatementEvent)                                {}
func (Nop) LockTimeoutRetry(string)                                  {}
func (Nop) ConcurrentCleanup(string)                                 {}
func (Nop) LockQueueWait(string, time.Duration, int, string, string) {}

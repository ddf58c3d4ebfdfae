package observe

import "time"

// Observers fans every call out to each of its observers, in order.
type Observers []Observer

// ConnectionOpened implements Observer.
func (all Observers) ConnectionOpened(target string) {
	for _, o := range all {
		o.ConnectionOpened(target)
	}
}

// ConnectionClosed implements Observer.
func (all Observers) ConnectionClosed(target string, fromClient, fromServer int64) {
	for _, o := range all {
		o.ConnectionClosed(target, fromClient, fromServer)
	}
}

// UpstreamConnect implements Observer.
func (all Observers) UpstreamConnect(target string, took time.Duration, err error) {
	for _, o := range all {
		o.UpstreamConnect(target, took, err)
	}
}

// StatementsInspected implements Observer.
func (all Observers) StatementsInspected(target string, ddl, other int) {
	for _, o := range all {
		o.StatementsInspected(target, ddl, other)
	}
}

// Statement implements Observer.
func (all Observers) Statement(ev *StatementEvent) {
	for _, o := range all {
		o.Statement(ev)
	}
}

// LockTimeoutRetry implements Observer.
func (all Observers) LockTimeoutRetry(target string) {
	for _, o := range all {
		o.LockTimeoutRetry(target)
	}
}

// ConcurrentCleanup implements Observer.
func (all Observers) ConcurrentCleanup(target string) {
	for _, o := range all {
		o.ConcurrentCleanup(target)
	}
}

// LockQueueWait implements Observer.
func (all Observers) LockQueueWait(target string, waited time.Duration, looks int, blocker, outcome string) {
	for _, o := range all {
		o.LockQueueWait(target, waited, looks, blocker, outcome)
	}
}

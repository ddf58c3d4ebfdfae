package enforce

import (
	"errors"
	"os"
	"time"
)

// await is how the client-to-server loop waits for the server: for a sync
// point to end, for the session to become idle.
// It sends what is still buffered for the server first (the answer waited
// for may be to a message in that buffer), and watches the client
// meanwhile: a client that goes away gets its running statement cancelled,
// as for any client that leaves mid-statement, and the wait goes on until
// the server has stopped it, so that follow-up work (dropping an INVALID
// index, restoring lock_timeout) still happens; without follow there is
// none, and the wait ends when the client leaves: the relay then ends the
// session. The wait ends early when the session ends, which it does when
// either connection is gone. Without watch, the client is not watched: for
// pgguard's own queries, which must run to their end even when the client
// has gone (cleaning up after it).
func (m *Machine) await(ready <-chan struct{}, watch, follow bool) (clientLeft bool) {
	if err := m.conns.flushServer(); err != nil {
		m.sess.Close()
		return false
	}
	select {
	case <-ready:
		return false
	case <-m.sess.Done():
		return false
	default:
	}
	if !watch {
		select {
		case <-ready:
		case <-m.sess.Done():
		}
		return false
	}
	peeked := make(chan error, 1)
	go func() {
		_, err := m.conns.FromClient.Peek(1)
		peeked <- err
	}()
	// stopWatch ends the watcher (a read deadline in the past unblocks it)
	// before the loop reads the client again.
	stopWatch := func() error {
		m.conns.Client.SetReadDeadline(time.Now())
		err := <-peeked
		m.conns.Client.SetReadDeadline(time.Time{})
		return err
	}
	select {
	case <-ready:
		err := stopWatch()
		return err != nil && !errors.Is(err, os.ErrDeadlineExceeded)
	case <-m.sess.Done():
		stopWatch()
		return false
	case err := <-peeked:
		if err != nil {
			clientLeft = true
			if !m.sess.Closing() {
				m.log.Warn("client left while its statement ran; cancelling it", "err", err)
				m.sess.CancelRunning()
			}
		}
		if clientLeft && !follow {
			return true
		}
		// Otherwise the client pipelined more; it waits in the buffer.
		select {
		case <-ready:
		case <-m.sess.Done():
		}
		return clientLeft
	}
}

// awaitOutcome waits for a sync point to end and returns its outcome
// (closed when the session ended first). The client is watched unless the
// sync point is pgguard's own query (watch false). The caller says which:
// the sync point's mode belongs to the server-to-client loop by now.
func (m *Machine) awaitOutcome(sp *syncPoint, watch bool) (out outcome, clientLeft bool) {
	clientLeft = m.await(sp.done, watch, true)
	select {
	case <-sp.done:
		return sp.out, clientLeft
	default:
		return outcome{closed: true}, true
	}
}

// waitIdle waits until every sync point sent so far is answered, so that
// the transaction status is current and the connection is free for the
// catalog. It reports false when the session ends first.
func (m *Machine) waitIdle() bool {
	for m.pending.Load() > 0 && !m.sess.Closing() {
		if m.acct.maySkip() {
			// What is pending may be answered only after a Sync the
			// client has not sent yet: judged as things stand.
			return true
		}
		if m.await(m.idleSignal, true, false) {
			return false
		}
	}
	return !m.sess.Closing()
}

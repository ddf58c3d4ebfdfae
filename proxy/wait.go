package proxy

import (
	"errors"
	"os"
	"time"
)

// awaitOutcome waits for a sync point the client-to-server loop must see
// the end of (a concurrent build, a DDL that may be retried). The client
// is expected to send nothing meanwhile, but it may go away: then the
// running statement is cancelled, as for any client that leaves
// mid-statement, and the wait goes on until the server has stopped it, so
// that the follow-up work (dropping an INVALID index) still happens.
func (s *Session) awaitOutcome(done chan outcome) (out outcome, clientLeft bool) {
	peeked := make(chan error, 1)
	go func() {
		_, err := s.cr.Peek(1)
		peeked <- err
	}()
	select {
	case out = <-done:
		// Stop the watcher: a read deadline in the past unblocks it.
		s.client.SetReadDeadline(time.Now())
		err := <-peeked
		s.client.SetReadDeadline(time.Time{})
		if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
			clientLeft = true
		}
		return out, clientLeft
	case err := <-peeked:
		if err == nil {
			// The client pipelined more; it waits in the buffer.
			return s.outcome(done), false
		}
		if !s.closing.Load() {
			s.log.Warn("client left while its statement ran; cancelling it", "err", err)
			s.cancelRunning()
		}
		return s.outcome(done), true
	case <-s.closed:
		return outcome{closed: true}, true
	}
}

// outcome waits for a sync point's outcome, or for the session to end.
func (s *Session) outcome(done chan outcome) outcome {
	select {
	case out := <-done:
		return out
	case <-s.closed:
		return outcome{closed: true}
	}
}

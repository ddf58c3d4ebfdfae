//go:build !linux

package proxy

// The event loop (loop_linux.go) needs epoll: elsewhere every session uses
// the goroutine relay.

type loopSession struct{}

func (s *Session) runInLoop() bool { return false }

func evictFromLoop(*loopSession) {}

package proxy

import (
	"errors"
	"strings"

	"github.com/pgguard/pgguard/internal/wire"
)

var (
	errSessionClosed = errors.New("session closed")
	errClientLeft    = errors.New("client left mid-statement")
)

// internalQuery runs a simple Query of pgguard's own on the session's server
// connection and returns its rows; the client sees nothing of it. Only the
// client-to-server loop calls it, at a statement boundary.
func (s *Session) internalQuery(sql string) (outcome, error) {
	sp := &syncPoint{swallow: true, done: make(chan struct{})}
	sp.seq = s.newSyncPoint()
	s.syncs.push(sp)
	if err := s.send(wire.Frame(wire.ClientQuery, queryBody(sql))); err != nil {
		return outcome{}, err
	}
	out, _ := s.awaitOutcome(sp)
	if out.closed {
		return out, errSessionClosed
	}
	return out, nil
}

// quoteLiteral quotes a string as an SQL literal (standard_conforming_strings
// on, the default since PostgreSQL 9.1; E” is used when a backslash appears).
func quoteLiteral(s string) string {
	q := "'" + strings.ReplaceAll(s, "'", "''") + "'"
	if strings.Contains(s, `\`) {
		return "E" + strings.ReplaceAll(q, `\`, `\\`)
	}
	return q
}

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
	if err := s.send(internalMessages(sql)); err != nil {
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

// internalName names the prepared statement and portal of pgguard's own
// queries.
const internalName = "pgguard_internal"

// internalMessages is one query of pgguard's own, ending with a Sync. It
// goes through the extended protocol with a statement and portal of its
// own: a simple Query would destroy the client's unnamed prepared
// statement, which drivers (lib/pq, pgjdbc) Parse in one batch and Bind in
// the next, with pgguard's queries in between. Closing first drops what an
// earlier query left (a portal lives until the transaction block ends, a
// statement until it is closed); closing nothing is no error.
func internalMessages(sql string) []byte {
	name := internalName + "\x00"
	msg := wire.Frame(wire.ClientClose, []byte("P"+name))
	msg = append(msg, wire.Frame(wire.ClientClose, []byte("S"+name))...)
	msg = append(msg, wire.Frame(wire.ClientParse, []byte(name+sql+"\x00\x00\x00"))...)
	msg = append(msg, wire.Frame(wire.ClientBind, []byte(name+name+"\x00\x00\x00\x00\x00\x00"))...)
	msg = append(msg, wire.Frame(wire.ClientExecute, []byte(name+"\x00\x00\x00\x00"))...)
	return append(msg, wire.Frame(wire.ClientSync, nil)...)
}

package enforce

import (
	"github.com/pgguard/pgguard/internal/pgcatalog"
	"github.com/pgguard/pgguard/internal/wire"
)

// internalQuery runs a simple Query of pgguard's own on the session's server
// connection and returns its rows; the client sees nothing of it. Only the
// client-to-server loop calls it, at a statement boundary.
func (m *Machine) internalQuery(sql string) (outcome, error) {
	sp := &syncPoint{mode: swallow, done: make(chan struct{}), queued: true}
	sp.seq = m.newSyncPoint()
	m.syncs.push(sp)
	if err := m.conns.send(internalMessages(sql)); err != nil {
		return outcome{}, err
	}
	out, _ := m.awaitOutcome(sp, false)
	if out.closed {
		return out, errSessionClosed
	}
	return out, nil
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

// sessionQuerier runs the catalog's questions as queries of pgguard's own
// on the session's server connection.
type sessionQuerier struct{ m *Machine }

func (q sessionQuerier) Query(sql string) ([][]*string, bool) {
	out, err := q.m.internalQuery(sql)
	if err != nil || out.errCode != "" {
		return nil, false
	}
	return out.rows, true
}

func (q sessionQuerier) Idle() bool         { return q.m.state.TxStatus() == 'I' }
func (q sessionQuerier) ServerVersion() int { return q.m.state.ServerVersion() }

var _ pgcatalog.GuardedQuerier = sessionQuerier{}

// estimateSavepoint names the savepoint around a query of pgguard's own
// that may fail inside the client's transaction block.
const estimateSavepoint = "pgguard_guarded"

// QueryGuarded runs a query that may fail (EXPLAIN of the client's
// statement) without aborting the client's transaction block: inside a
// savepoint, rolled back to on failure and released after. Outside a
// transaction block it is Query.
func (q sessionQuerier) QueryGuarded(sql string) ([][]*string, bool) {
	if q.Idle() {
		return q.Query(sql)
	}
	if _, ok := q.Query("SAVEPOINT " + estimateSavepoint); !ok {
		return nil, false
	}
	rows, ok := q.Query(sql)
	if !ok {
		// The failure aborted only the subtransaction; rolling back to
		// the savepoint makes the block usable again, as it was.
		q.Query("ROLLBACK TO SAVEPOINT " + estimateSavepoint)
	}
	q.Query("RELEASE SAVEPOINT " + estimateSavepoint)
	return rows, ok
}

package enforce

import (
	"errors"

	"github.com/pgguard/pgguard/internal/pgcatalog"
	"github.com/pgguard/pgguard/internal/wire"
	"github.com/pgguard/pgguard/policy/sqltext"
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
// the next, with pgguard's queries in between.
//
// It leaves nothing behind for the client to see: the statement is closed
// as soon as it is bound and the portal as soon as it has run, before the
// Sync. An open portal would stay until the transaction block ends, listed
// in pg_cursors, holding its snapshot (backend_xmin) and failing a later
// COPY ... FREEZE with "prior transaction activity". Only a failure skips
// those Closes; the portal then goes with the failed (sub)transaction, and
// the Closes at the start of the next query drop a statement that a failed
// Bind left (closing nothing is no error).
func internalMessages(sql string) []byte {
	name := internalName + "\x00"
	msg := wire.Frame(wire.ClientClose, []byte("P"+name))
	msg = append(msg, wire.Frame(wire.ClientClose, []byte("S"+name))...)
	msg = append(msg, wire.Frame(wire.ClientParse, []byte(name+sql+"\x00\x00\x00"))...)
	msg = append(msg, wire.Frame(wire.ClientBind, []byte(name+name+"\x00\x00\x00\x00\x00\x00"))...)
	msg = append(msg, wire.Frame(wire.ClientClose, []byte("S"+name))...)
	msg = append(msg, wire.Frame(wire.ClientExecute, []byte(name+"\x00\x00\x00\x00"))...)
	msg = append(msg, wire.Frame(wire.ClientClose, []byte("P"+name))...)
	return append(msg, wire.Frame(wire.ClientSync, nil)...)
}

// sessionQuerier runs the catalog's questions as queries of pgguard's own
// on the session's server connection.
type sessionQuerier struct{ m *Machine }

// The server reads the query, and writes the rows, in the session's
// client_encoding, while the catalog's SQL and the names in it are text
// as pgguard read the client's statement (UTF-8, a character Go cannot
// read a placeholder): a name is written back in the client's bytes
// (ServerText) and the rows are read as the client's (ClientText). Sent as
// UTF-8, a table named in SJIS by a session in SJIS was another name to
// the server: the catalog found no such table, and the rules' findings on
// a missing relation were dropped. Text that cannot be written, or read,
// in the encoding, or a name sent while a setting may be moving
// (unanswered messages), is an unknown answer.
func (q sessionQuerier) Query(sql string) ([][]*string, bool) {
	out, err := q.m.textQuery(sql)
	if err != nil || out.errCode != "" {
		return nil, false
	}
	return out.rows, true
}

// errUnwritable: a query of pgguard's own that names something the
// session's client_encoding cannot write, or while a setting may be
// moving.
var errUnwritable = errors.New("pgguard: the query cannot be written in the session's client_encoding")

// textQuery is internalQuery for a query whose text pgguard read as
// UTF-8 (names from the client's statement): written in the session's
// client_encoding, and its rows read back from it (sessionQuerier.Query).
// The look before queueing names the statement's tables too: sent as
// UTF-8, a table named in SJIS was another name to to_regclass, and the
// look saw no holder. Text that cannot be written or read is an error
// (errUnwritable).
func (m *Machine) textQuery(sql string) (outcome, error) {
	if !sqltext.IsASCII(sql) && m.pending.Load() > 0 {
		return outcome{}, errUnwritable
	}
	return m.inClientEncoding(m.internalQuery, sql)
}

// inClientEncoding runs sql with run, written in the session's
// client_encoding, and reads its rows back from it (textQuery).
func (m *Machine) inClientEncoding(run func(string) (outcome, error), sql string) (outcome, error) {
	enc := m.state.Parameter("client_encoding")
	if !sqltext.IsASCII(sql) {
		s, err := sqltext.ServerText(enc, sql)
		if err != nil {
			// A name the encoding cannot spell (the client wrote it
			// U&"\8868" in LATIN1): in Unicode escapes, all ASCII.
			u, ok := sqltext.UnicodeEscaped(sql)
			if !ok {
				return outcome{}, errUnwritable
			}
			s = u
		}
		sql = s
	}
	out, err := run(sql)
	if err != nil || out.errCode != "" {
		return out, err
	}
	for _, row := range out.rows {
		for i, cell := range row {
			if cell == nil || sqltext.IsASCII(*cell) {
				continue
			}
			text, err := sqltext.ClientText(enc, *cell)
			if err != nil {
				return outcome{}, errUnwritable
			}
			row[i] = &text
		}
	}
	return out, nil
}

func (q sessionQuerier) Idle() bool         { return q.m.state.TxStatus() == 'I' }
func (q sessionQuerier) ServerVersion() int { return q.m.state.ServerVersion() }

var _ pgcatalog.GuardedQuerier = sessionQuerier{}

// estimateSavepoint names the savepoint around a query of pgguard's own
// that may fail inside the client's transaction block.
const estimateSavepoint = "pgguard_guarded"

// QueryGuarded runs a query that may fail (EXPLAIN of the client's
// statement) without aborting the client's transaction block: inside a
// savepoint, rolled back to and released after. Rolling back, on success
// too, gives up the locks the query took (EXPLAIN's ACCESS SHARE on the
// statement's tables), which would otherwise stay until the block ends,
// even when pgguard then refuses the statement. Outside a transaction
// block it is Query.
func (q sessionQuerier) QueryGuarded(sql string) ([][]*string, bool) {
	if q.Idle() {
		return q.Query(sql)
	}
	if _, ok := q.Query("SAVEPOINT " + estimateSavepoint); !ok {
		return nil, false
	}
	rows, ok := q.Query(sql)
	q.Query("ROLLBACK TO SAVEPOINT " + estimateSavepoint)
	q.Query("RELEASE SAVEPOINT " + estimateSavepoint)
	return rows, ok
}

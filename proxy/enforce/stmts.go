package enforce

import (
	"regexp"
	"strings"

	"github.com/pgguard/pgguard/internal/wire"
	"github.com/pgguard/pgguard/policy"
)

// pgguard remembers some prepared statements by name (rewrittenStmts,
// ledgerStmts): their Binds need a look. The memory follows the server's
// lifecycle of named statements:
//
//   - a Parse replaces the unnamed statement (the server drops it before
//     parsing, so even a failed Parse does); a named one it makes only
//     when it succeeds: a Parse that fails (42P05, a name in use) or that
//     the server skips changes nothing (settle);
//   - Close 'S' and SQL DEALLOCATE name drop one, DEALLOCATE ALL and
//     DISCARD ALL all of them; SQL PREPARE makes one pgguard knows nothing of;
//   - a simple Query drops the unnamed statement.
//
// Changes are made when the message is sent, as if it succeeds, so that
// a Bind pipelined behind it sees them; a Parse that fails is undone when
// its answer arrives.

// stmtUndo is what a Parse changed of the memory, to undo it when the
// Parse fails or is skipped.
type stmtUndo struct {
	name       string
	prevV      *verdict
	prevL      ledgerStmt
	hadL       bool
	installedV *verdict
	installedL *ledgerStmt
	prevB      *blockerStmt
	installedB *blockerStmt
}

// beginParse drops what the name held before a Parse of it, and returns
// the record to complete (endParse) and attach to the Parse.
func (m *Machine) beginParse(name string) *stmtUndo {
	u := &stmtUndo{name: name, prevV: m.rewrittenStmts[name], prevB: m.blockerStmts[name]}
	u.prevL, u.hadL = m.ledgerStmts[name]
	delete(m.rewrittenStmts, name)
	delete(m.blockerStmts, name)
	delete(m.ledgerStmts, name)
	delete(m.boundStmts, name)
	delete(m.dmlStmts, name)
	return u
}

// endParse notes what the Parse made.
func (u *stmtUndo) endParse(m *Machine) {
	u.installedV = m.rewrittenStmts[u.name]
	u.installedB = m.blockerStmts[u.name]
	if l, ok := m.ledgerStmts[u.name]; ok {
		u.installedL = &l
	}
}

// settle undoes what the Parses that failed or were skipped changed. Only
// the client-to-server loop calls it, before it looks at the memory.
func (m *Machine) settle() {
	for _, u := range m.acct.takeUndone() {
		if m.blockerStmts[u.name] == u.installedB {
			delete(m.blockerStmts, u.name)
			if u.name != "" && u.prevB != nil {
				m.blockerStmts[u.name] = u.prevB
			}
		}
		if m.rewrittenStmts[u.name] != u.installedV {
			continue // changed again since
		}
		if l, ok := m.ledgerStmts[u.name]; ok != (u.installedL != nil) || ok && l != *u.installedL {
			continue
		}
		delete(m.rewrittenStmts, u.name)
		delete(m.ledgerStmts, u.name)
		if u.name == "" {
			// A failed Parse of the unnamed statement dropped the old one
			// too. (A skipped one did not; the next Query or Parse will.)
			continue
		}
		if u.prevV != nil {
			if m.rewrittenStmts == nil {
				m.rewrittenStmts = make(map[string]*verdict)
			}
			m.rewrittenStmts[u.name] = u.prevV
		}
		if u.hadL {
			if m.ledgerStmts == nil {
				m.ledgerStmts = make(map[string]ledgerStmt)
			}
			m.ledgerStmts[u.name] = u.prevL
		}
	}
}

// rememberRewritten notes that the server holds the prepared statement
// name as pgguard rewrote it (or that it waits for a tool's lock), for
// OnBind.
func (m *Machine) rememberRewritten(name string, v *verdict) {
	if m.rewrittenStmts == nil {
		m.rewrittenStmts = make(map[string]*verdict)
	}
	m.rewrittenStmts[name] = v
}

// forget drops the memory of one prepared statement.
func (m *Machine) forget(name string) {
	delete(m.rewrittenStmts, name)
	delete(m.blockerStmts, name)
	delete(m.ledgerStmts, name)
	delete(m.boundStmts, name)
	delete(m.dmlStmts, name)
}

// OnClose reads a Close message whose header the relay read and forwards
// it; a Close of a prepared statement drops pgguard's memory of it. The
// relay calls it while WatchesBinds reports true.
func (m *Machine) OnClose(n int) error {
	if n > 1024 {
		m.unsynced = true
		return m.conns.Forward(wire.ClientClose, n)
	}
	body, err := m.readInspected(n)
	if err != nil {
		return err
	}
	m.closed(body)
	m.unsynced = true
	return m.conns.sendMessage(wire.ClientClose, body)
}

// LoopClose is OnClose for the event loop, which forwards the message.
func (m *Machine) LoopClose(body []byte) {
	m.closed(body)
	m.OnExtended()
}

func (m *Machine) closed(body []byte) {
	if len(body) < 2 || body[0] != 'S' {
		return
	}
	if name, _, ok := wire.CStringBytes(body[1:]); ok {
		m.forget(string(name))
	}
}

// queryEffects applies to the memory what a statement text does to
// prepared statements when the server runs it: a simple Query (query
// true) drops the unnamed statement; DEALLOCATE, PREPARE and DISCARD ALL
// drop the names they name.
func (m *Machine) queryEffects(text string, query bool) {
	if len(m.rewrittenStmts) == 0 && len(m.ledgerStmts) == 0 && len(m.boundStmts) == 0 && len(m.blockerStmts) == 0 && len(m.dmlStmts) == 0 {
		return
	}
	if query {
		m.forget("")
	}
	if !mentionsPrepared(text) {
		return
	}
	for _, sm := range preparedSQL.FindAllStringSubmatch(text, -1) {
		switch name := sm[2]; {
		case strings.EqualFold(name, "all"):
			clear(m.rewrittenStmts)
			clear(m.blockerStmts)
			clear(m.ledgerStmts)
			clear(m.boundStmts)
			clear(m.dmlStmts)
		case strings.EqualFold(sm[1], "discard"):
			// DISCARD PLANS, SEQUENCES, TEMP: no prepared statement goes.
		default:
			if strings.HasPrefix(name, `"`) {
				name = strings.ReplaceAll(name[1:len(name)-1], `""`, `"`)
			} else {
				name = strings.ToLower(name)
			}
			m.forget(name)
		}
	}
}

// preparedSQL finds DEALLOCATE [PREPARE] name|ALL, PREPARE name and
// DISCARD ALL. A match inside a literal or comment only makes pgguard
// forget a statement: the server then judges its Bind.
var preparedSQL = regexp.MustCompile(`(?i)\b(deallocate|prepare|discard)\s+(?:prepare\s+)?("(?:[^"]|"")+"|[a-z_][a-z0-9_$]*)`)

// mentionsPrepared is a quick test before preparedSQL.
func mentionsPrepared(text string) bool {
	for i := 0; i+7 <= len(text); i++ {
		switch text[i] | 0x20 {
		case 'd', 'p':
			w := strings.ToLower(text[i:min(i+10, len(text))])
			if strings.HasPrefix(w, "deallocate") || strings.HasPrefix(w, "prepare") || strings.HasPrefix(w, "discard") {
				return true
			}
		}
	}
	return false
}

// notePrepared records in *into what a Parse of name with text prepares
// for an EXECUTE later in its batch: the statement itself under name, and
// a PREPARE's under the name it prepares. Only texts an EXECUTE may run
// as an UPDATE, DELETE or MERGE are kept (policy.PreparesFor), so that
// application traffic allocates nothing.
func notePrepared(into *map[string]string, name, text string) {
	prepares, keep := policy.PreparesFor(text)
	if !keep || name == "" && prepares == "" {
		return
	}
	if *into == nil {
		*into = make(map[string]string)
	}
	if name != "" {
		(*into)[name] = strings.Clone(text)
	}
	if prepares != "" {
		(*into)[prepares] = strings.Clone(text)
	}
}

// preparedInBatch is Context.BatchPrepared: what the open batch prepares
// under name, the statements judged ahead seeing what lookAhead walked
// past.
func (m *Machine) preparedInBatch(name string) (string, bool) {
	if text, ok := m.aheadPrepared[name]; ok {
		return text, true
	}
	text, ok := m.batchPrepared[name]
	return text, ok
}

package enforce

import (
	"encoding/binary"

	"github.com/pgguard/pgguard/internal/wire"
	"github.com/pgguard/pgguard/policy"
)

// The Loop methods serve an event loop that relays many sessions on one
// thread (the proxy's event loop): it reads whole messages into buffers of
// its own and forwards them unchanged. Each applies the fast path of its
// On counterpart when that path applies, and reports true; otherwise it
// changes nothing and reports false, and the loop hands the session, from
// that message on, to the goroutine relay, whose On call then treats the
// message as it would have anyway. So the loop never judges, rewrites,
// refuses, holds or waits: everything pgguard does beyond counting happens
// in the goroutine relay.

// LoopReady reports whether the machine has nothing of its own in flight:
// no special sync point queued, no special batch open, nothing to do after
// a Sync. Only then may an event loop relay the session, and while the
// Loop methods report true, it stays so.
func (m *Machine) LoopReady() bool {
	return m.syncs.n.Load() == 0 && m.batch == nil && m.afterSync == nil
}

// LoopQuery is OnQuery's fast path for a Query body held whole.
func (m *Machine) LoopQuery(body []byte) bool {
	if m.cfg.Policy == nil {
		m.OnSync()
		return true
	}
	if len(body) > m.cfg.MaxStatementMessage || len(body) == 0 || body[len(body)-1] != 0 {
		return false
	}
	eng := m.cfg.Policy.Engine()
	text := wire.BytesView(body[:len(body)-1])
	// Observe may name the session's tool; then the statement is not
	// looked at again, so leave it to OnQuery.
	if !m.tools.Quiet(text) || (m.liftsToolLocks() && policy.WaitsForToolLock(text)) || m.tx.Active() || !m.loopMayJudge(text) || m.userCodeInTx(text) {
		return false
	}
	n, plain := m.plainText(eng, text, m.state.BackslashQuote())
	if !plain || m.ledgerEvent(text) != nil {
		return false
	}
	m.tools.Observe(text)
	m.noteLockTimeout(text, true)
	m.settle()
	m.queryEffects(text, true)
	m.obs.StatementsInspected(m.state.Target, 0, n)
	m.OnSync()
	return true
}

// LoopParse is OnParse's fast path for a Parse body held whole; ahead is
// what the loop holds of the client's later messages. For the first Parse
// of a batch, OnParse judges ahead the batch's later statements that need
// the catalog (lookAhead): a batch whose buffered Parses are not all plain
// is left to it.
func (m *Machine) LoopParse(body, ahead []byte) bool {
	if m.cfg.Policy == nil {
		m.OnExtended()
		return true
	}
	if len(body) > m.cfg.MaxStatementMessage {
		return false
	}
	name, query, ok := parseFields(body)
	m.settle()
	if _, bound := m.boundStmts[string(name)]; !ok || m.rewrittenStmts[string(name)] != nil || m.blockerStmts[string(name)] != nil || bound {
		return false
	}
	if _, ledger := m.ledgerStmts[string(name)]; ledger {
		return false
	}
	eng := m.cfg.Policy.Engine()
	text := wire.BytesView(query)
	plain, changes := m.loopPlain(eng, text)
	if !plain || m.tx.Active() || m.userCodeInTx(text) {
		return false
	}
	if ev, _ := m.ledgerRecord(text); ev != nil {
		return false
	}
	if !m.unsynced && !m.plainAhead(eng, ahead) {
		return false
	}
	if !m.unsynced {
		m.warm = nil
	}
	m.tools.Observe(text)
	m.noteLockTimeout(text, false)
	m.queryEffects(text, false)
	m.noteUserCodeStmt(name, text)
	m.noteTxStmt(name, text)
	m.noteDMLStmt(name, text)
	m.batchChangesLockTimeout = m.batchChangesLockTimeout || changes
	m.unsynced = true
	m.obs.StatementsInspected(m.state.Target, 0, 1)
	return true
}

// loopPlain reports whether a Parse's statement takes OnParse's fast path,
// and whether it may change lock_timeout (policy.SessionEffects).
func (m *Machine) loopPlain(eng *policy.Engine, text string) (plain, changesLockTimeout bool) {
	if !m.tools.Quiet(text) || !m.loopMayJudge(text) {
		return false, false
	}
	changes, advisory := policy.SessionEffects(text)
	advisory = advisory && m.liftsToolLocks()
	if advisory {
		return false, false
	}
	_, plain = m.plainText(eng, text, m.state.BackslashQuote())
	return plain, changes
}

// plainAhead reports whether every Parse among the complete messages of
// ahead, up to the batch's Sync, takes OnParse's fast path, and no Bind
// binds a prepared statement that blocks writes (batchlt.go).
// What has not arrived is not looked at: lookAhead would not wait for it
// either.
func (m *Machine) plainAhead(eng *policy.Engine, ahead []byte) bool {
	plain := true
	frames(ahead, func(typ wire.ClientMsg, body []byte) bool {
		switch typ {
		case wire.ClientSync:
			return false
		case wire.ClientBind:
			if len(m.blockerStmts) > 0 {
				_, rest, _ := wire.CStringBytes(body)
				if stmt, _, ok := wire.CStringBytes(rest); !ok || m.blockerStmts[string(stmt)] != nil {
					plain = false
					return false
				}
			}
		case wire.ClientParse:
			_, query, ok := parseFields(body)
			if p, _ := m.loopPlain(eng, wire.BytesView(query)); !ok || !p {
				plain = false
				return false
			}
		}
		return true
	})
	return plain
}

// frames calls f with the type and body of each complete client message
// at the start of b, in order, until f returns false, and reports whether
// f did. It stops without calling f at a message that has not arrived
// whole or whose length is invalid.
func frames(b []byte, f func(typ wire.ClientMsg, body []byte) bool) (stopped bool) {
	for off := 0; off+5 <= len(b); {
		l := int(binary.BigEndian.Uint32(b[off+1 : off+5]))
		if l < 4 || off+1+l > len(b) {
			return false
		}
		if !f(wire.ClientMsg(b[off]), b[off+5:off+1+l]) {
			return true
		}
		off += 1 + l
	}
	return false
}

// parseFields splits a Parse body into its statement name and query.
func parseFields(body []byte) (name, query []byte, ok bool) {
	name, rest, ok := wire.CStringBytes(body)
	if !ok {
		return nil, nil, false
	}
	query, _, ok = wire.CStringBytes(rest)
	return name, query, ok
}

// LoopBind is the relay's path for a Bind that OnBind need not see.
func (m *Machine) LoopBind() bool {
	if m.WatchesBinds() {
		return false
	}
	m.OnExtended()
	return true
}

// LoopServer reports whether a server message may be relayed by the loop:
// no special sync point waits for it.
func (m *Machine) LoopServer() bool { return m.syncs.n.Load() == 0 }

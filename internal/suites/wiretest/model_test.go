package wiretest

// model follows a session the way PostgreSQL and the policy see it, so that
// the test knows, without asking pgguard, which statements the policy
// refuses (vIndexBig depends on the transaction status and on being alone)
// and which transaction status each ReadyForQuery must carry. The direct
// run checks the model: a status it did not predict is a bug of the test,
// reported as such.
type model struct {
	status   byte // transaction status: 'I', 'T' or 'E'
	unsynced bool // extended-protocol messages since the last Sync
	// changedLT: a statement of the open batch may change lock_timeout.
	changedLT bool
	failed    bool // an error in this extended batch: skip until Sync
	// copying is the statement of a COPY FROM STDIN that an Execute
	// started: PostgreSQL ignores Sync and Flush until its CopyDone.
	copying  *stmt
	prepared map[string]*stmt
	portals  map[string]*stmt
}

// annotate fills msg.refused in s and returns the predicted status of
// every ReadyForQuery after the startup's, in order.
func annotate(s *session) []byte {
	m := &model{status: 'I', prepared: map[string]*stmt{}, portals: map[string]*stmt{}}
	var statuses []byte
	s.ready = make([]int, len(s.chunks))
	for ci, c := range s.chunks {
		for i := range c {
			// What follows, across writes: pgguard reads ahead to the Sync.
			ahead := append([]msg(nil), c[i+1:]...)
			for _, later := range s.chunks[ci+1:] {
				ahead = append(ahead, later...)
			}
			if st, ok := m.step(c, i, ahead); ok {
				statuses = append(statuses, st)
				s.ready[ci]++
			}
		}
	}
	return statuses
}

// step applies message i of chunk c, followed by the messages ahead; ok
// reports a ReadyForQuery.
func (m *model) step(c chunk, i int, ahead []msg) (status byte, ok bool) {
	msg := &c[i]
	switch msg.kind {
	case mQuery:
		if m.failed {
			// Skipped until Sync: no answer at all. pgguard judges it
			// behind the batch's messages.
			msg.refused = make([]bool, len(msg.stmts))
			for i, s := range msg.stmts {
				msg.refused[i] = m.refuses(s, false, m.changedLT)
			}
			return 0, false
		}
		m.query(msg)
		return m.status, true
	case mFunctionCall:
		if m.failed {
			return 0, false
		}
		return m.status, true // 'E': fails, and the block stays failed
	case mSync:
		if m.copying != nil {
			return 0, false // ignored in COPY
		}
		m.sync()
		return m.status, true
	case mCopyDone:
		if s := m.copying; s != nil {
			m.copying = nil
			if s.fail != fNone {
				m.fail()
			}
		}
	case mParse:
		before := m.unsynced
		m.unsynced = true
		s := msg.stmts[0]
		// pgguard judges a Parse alone when nothing of the batch came
		// before it and only its own Bind, Describe, Close and one
		// Execute follow up to the Sync (no Flush).
		alone := !before && aloneAhead(ahead)
		msg.refused = []bool{m.refuses(s, alone, m.changedLT)}
		m.changedLT = m.changedLT || s.changesLockTimeout
		if !m.failed && msg.name == "" {
			// PostgreSQL drops the unnamed statement before parsing.
			delete(m.prepared, "")
		}
		_, taken := m.prepared[msg.name]
		switch {
		case m.failed:
		case m.status == 'E' && s.tx != txEnd, msg.refused[0], s.fail == fParse,
			msg.name != "" && taken: // 42P05
			m.fail()
		default:
			m.prepared[msg.name] = s
		}
	case mBind:
		m.unsynced = true
		s, exists := m.prepared[msg.name]
		_, portalTaken := m.portals[msg.portal]
		switch {
		case m.failed:
		case !exists, m.status == 'E' && s.tx != txEnd, s.fail == fBind,
			// A named portal lives until Close or the end of the
			// transaction; binding its name again is an error.
			msg.portal != "" && portalTaken:
			m.fail()
		default:
			m.portals[msg.portal] = s
		}
	case mDescribe:
		m.unsynced = true
		exists := false
		if msg.what == 'S' {
			_, exists = m.prepared[msg.name]
		} else {
			_, exists = m.portals[msg.portal]
		}
		if !m.failed && !exists {
			m.fail()
		}
	case mExecute:
		m.unsynced = true
		s, exists := m.portals[msg.portal]
		switch {
		case m.failed:
		case !exists:
			m.fail()
		case s.copyIn != nil:
			m.copying = s // fails, if it does, on its data
		case s.fail == fExec:
			m.fail()
		default:
			m.apply(s.tx)
		}
	case mClose:
		m.unsynced = true
		if !m.failed {
			if msg.what == 'S' {
				delete(m.prepared, msg.name)
			} else {
				delete(m.portals, msg.portal)
			}
		}
	}
	return 0, false
}

// refuses says whether the policy refuses s here; changed: a statement
// before it in the same Query or batch may change lock_timeout.
func (m *model) refuses(s *stmt, alone, changed bool) bool {
	if changed && (s.blocks == blocksWrites || s.blocks == blocksUnlessAlone && !(alone && m.status == 'I')) {
		return true
	}
	switch s.verdict {
	case vRefused:
		return true
	case vIndexBig:
		return !(alone && m.status == 'I')
	}
	return false
}

// query applies a simple Query: PostgreSQL parses the whole string first,
// so a refused statement anywhere (a syntax error on both sides) means
// nothing of it runs.
func (m *model) query(msg *msg) {
	defer m.endQuery()
	alone := len(msg.stmts) == 1
	msg.refused = make([]bool, len(msg.stmts))
	any := false
	changed := m.changedLT
	for i, s := range msg.stmts {
		msg.refused[i] = m.refuses(s, alone, changed)
		changed = changed || s.changesLockTimeout
		any = any || msg.refused[i]
	}
	if any {
		m.fail()
		return
	}
	for _, s := range msg.stmts {
		if m.status == 'E' && s.tx != txEnd {
			return
		}
		if s.fail != fNone {
			m.fail()
			return
		}
		m.apply(s.tx)
		m.prepEffects(s)
	}
}

// prepEffects applies what a statement does to prepared statements.
func (m *model) prepEffects(s *stmt) {
	if s.dropsAll {
		clear(m.prepared)
	}
	if s.drops != "" {
		delete(m.prepared, s.drops)
	}
	if s.prepares != "" {
		m.prepared[s.prepares] = s.preparedAs
	}
}

// endQuery: a simple Query drops the unnamed statement and portal, and
// the end of a transaction closes the named portals too.
func (m *model) endQuery() {
	m.changedLT = false
	delete(m.prepared, "")
	delete(m.portals, "")
	if m.status == 'I' {
		clear(m.portals)
	}
}

// fail is an error: a transaction block is aborted; in the extended
// protocol everything up to Sync is skipped.
func (m *model) fail() {
	if m.status == 'T' {
		m.status = 'E'
	}
	if m.unsynced {
		m.failed = true
	}
}

func (m *model) apply(tx txEffect) {
	switch tx {
	case txBegin:
		if m.status == 'I' {
			m.status = 'T'
		}
	case txEnd:
		// Even outside a block (a warning) it ends the transaction, the
		// implicit one of a batch too, and with it every portal.
		m.status = 'I'
		clear(m.portals)
	}
}

func (m *model) sync() {
	m.unsynced, m.failed, m.changedLT = false, false, false
	if m.status == 'I' {
		// The implicit transaction committed: its portals are closed.
		clear(m.portals)
	}
}

// aloneAhead reports whether a Parse followed by rest is alone in its
// batch as pgguard judges it, reading ahead across writes up to the Sync.
func aloneAhead(rest []msg) bool {
	n := 0
	for _, m := range rest {
		switch m.kind {
		case mSync:
			return n <= 1
		case mExecute:
			if n++; n > 1 {
				return false
			}
		case mBind, mDescribe, mClose:
		default:
			return false
		}
	}
	return false
}

package wiretest

import "strings"

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
	// rewritten: named statements pgguard prepared as its CONCURRENTLY
	// rewrite (a CREATE or DROP INDEX Parse alone and idle). A later Bind
	// of one anywhere but alone and idle is refused by pgguard (OnBind).
	rewritten map[string]bool
	// cursors: the SQL cursors open, and whether each is WITH HOLD and
	// was declared in the transaction now open (a rollback closes it).
	cursors map[string]cursor
	// implicitBlock: in a Query of several statements.
	implicitBlock bool
	// pendingRewrite: a named statement prepared as the rewrite and run
	// in the batch that prepared it; pgguard remembers it once the batch
	// succeeded (at its Sync).
	pendingRewrite *string
}

type cursor struct{ hold, thisTx bool }

func newModel() *model {
	return &model{status: 'I', prepared: map[string]*stmt{}, portals: map[string]*stmt{},
		rewritten: map[string]bool{}, cursors: map[string]cursor{}}
}

// rewritable: pgguard rewrites it to CONCURRENTLY when alone and idle.
func rewritable(s *stmt) bool { return s.verdict == vIndexBig || s.blocks == blocksUnlessAlone }

func (m *model) setPrepared(name string, s *stmt, rewritten bool) {
	m.prepared[name] = s
	if rewritten {
		m.rewritten[name] = true
	} else {
		delete(m.rewritten, name)
	}
}

func (m *model) dropPrepared(name string) {
	delete(m.prepared, name)
	delete(m.rewritten, name)
}

// dynFails reports whether s fails for what the session did before it
// (names taken or missing, a block needed): at execution.
func (m *model) dynFails(s *stmt) bool {
	inBlock := m.status == 'T' || m.implicitBlock
	if s.needsBlock && !inBlock {
		return true
	}
	if s.discards && inBlock {
		return true
	}
	if strings.HasPrefix(s.sql, "ALTER TABLE t1") {
		// PostgreSQL refuses to alter a table that an open portal of
		// the session reads (55006, "being used by active queries").
		for name, p := range m.portals {
			if name != "" && p != nil && strings.Contains(p.sql, " t1") {
				return true
			}
		}
	}
	if s.cursor != "" {
		_, open := m.cursors[s.cursor]
		switch s.cursorOp {
		case curDeclare, curDeclareHold:
			return open
		default:
			return !open
		}
	}
	if s.drops != "" {
		if _, ok := m.prepared[s.drops]; !ok {
			return true
		}
	}
	if s.prepares != "" && s.prepares != s.drops {
		if _, ok := m.prepared[s.prepares]; ok {
			return true
		}
	}
	return false
}

// cursorEffects applies what a statement that ran does to cursors.
func (m *model) cursorEffects(s *stmt) {
	if s.discards {
		clear(m.cursors)
		return
	}
	switch s.cursorOp {
	case curDeclare, curDeclareHold:
		m.cursors[s.cursor] = cursor{hold: s.cursorOp == curDeclareHold, thisTx: true}
	case curClose:
		delete(m.cursors, s.cursor)
	}
}

// endTx is the end of the transaction open (a block or an implicit one):
// a commit keeps the cursors WITH HOLD, a rollback those declared before.
func (m *model) endTx(commit bool) {
	for name, c := range m.cursors {
		if !c.hold || (!commit && c.thisTx) {
			delete(m.cursors, name)
		} else {
			c.thisTx = false
			m.cursors[name] = c
		}
	}
}

// annotate fills msg.refused in s and returns the predicted status of
// every ReadyForQuery after the startup's, in order.
func annotate(s *session) []byte {
	m := newModel()
	var statuses []byte
	s.ready = make([]int, len(s.chunks))
	s.idleIn = make([]byte, len(s.chunks))
	for ci, c := range s.chunks {
		for i := range c {
			// What follows, across writes: pgguard reads ahead to the Sync.
			ahead := append([]msg(nil), c[i+1:]...)
			for _, later := range s.chunks[ci+1:] {
				ahead = append(ahead, later...)
			}
			st, ok := m.step(c, i, ahead)
			c[i].ready = ok
			if ok {
				statuses = append(statuses, st)
				s.ready[ci]++
			}
		}
		if !m.unsynced && m.copying == nil && m.status != 'I' {
			s.idleIn[ci] = m.status
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
			} else {
				m.applyStmt(s)
			}
		}
	case mCopyFail:
		if m.copying != nil {
			m.copying = nil
			m.fail()
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
			m.dropPrepared("")
		}
		_, taken := m.prepared[msg.name]
		switch {
		case m.failed:
		case m.status == 'E' && s.tx != txEnd, msg.refused[0], s.fail == fParse,
			msg.name != "" && taken: // 42P05
			m.fail()
		default:
			// Not refused, so rewritten when it can be: alone and idle.
			// Prepared alone (no Execute) it is remembered at once, else
			// once its batch succeeded.
			rw := rewritable(s) && alone && m.status == 'I'
			msg.rewrite = rw
			if msg.seen != 0 {
				rw = rewritable(s) && msg.seen > 0
			}
			now := rw && executesAhead(ahead) == 0
			m.setPrepared(msg.name, s, now)
			if rw && !now {
				name := msg.name
				m.pendingRewrite = &name
			}
		}
	case mBind:
		before := m.unsynced
		m.unsynced = true
		s, exists := m.prepared[msg.name]
		_, portalTaken := m.portals[msg.portal]
		// pgguard refuses the Bind of its CONCURRENTLY rewrite anywhere
		// but alone and idle, in place of the server's 25001.
		msg.refusedBind = !m.failed && exists && m.rewritten[msg.name] &&
			!(!before && aloneAhead(ahead) && m.status == 'I')
		switch {
		case m.failed:
		case !exists, msg.refusedBind, m.status == 'E' && s.tx != txEnd, s.fail == fBind,
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
		case s.fail == fExec, m.dynFails(s):
			m.fail()
		default:
			m.applyStmt(s)
		}
	case mClose:
		m.unsynced = true
		if !m.failed {
			if msg.what == 'S' {
				m.dropPrepared(msg.name)
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
	m.implicitBlock = len(msg.stmts) > 1
	defer func() { m.implicitBlock = false }()
	for _, s := range msg.stmts {
		if m.status == 'E' && s.tx != txEnd {
			return
		}
		if s.fail != fNone || m.dynFails(s) {
			m.fail()
			return
		}
		m.applyStmt(s)
	}
}

// applyStmt applies what a statement that ran does.
func (m *model) applyStmt(s *stmt) {
	m.apply(s)
	m.prepEffects(s)
	m.cursorEffects(s)
}

// prepEffects applies what a statement does to prepared statements.
func (m *model) prepEffects(s *stmt) {
	if s.dropsAll {
		// The unnamed statement is not among them.
		unnamed, ok := m.prepared[""]
		clear(m.prepared)
		clear(m.rewritten)
		if ok {
			m.prepared[""] = unnamed
		}
	}
	if s.drops != "" {
		m.dropPrepared(s.drops)
	}
	if s.prepares != "" {
		m.setPrepared(s.prepares, s.preparedAs, false)
	}
}

// endQuery: a simple Query drops the unnamed statement and portal, and
// the end of a transaction closes the named portals too.
func (m *model) endQuery() {
	m.changedLT = false
	m.dropPrepared("")
	delete(m.portals, "")
	if m.status == 'I' {
		clear(m.portals)
		m.endTx(true) // a rollback, if it failed, was done by fail
	}
}

// fail is an error: a transaction block is aborted; in the extended
// protocol everything up to Sync is skipped.
func (m *model) fail() {
	if m.status == 'T' {
		m.status = 'E'
	}
	if m.status == 'I' {
		// The implicit transaction is rolled back at the error.
		m.endTx(false)
	}
	if m.unsynced {
		m.failed = true
	}
}

func (m *model) apply(s *stmt) {
	switch s.tx {
	case txBegin:
		if m.status == 'I' {
			m.status = 'T'
		}
	case txEnd:
		// Even outside a block (a warning) it ends the transaction, the
		// implicit one of a batch too, and with it every portal.
		m.endTx(!s.rollback && m.status != 'E')
		m.status = 'I'
		clear(m.portals)
	}
}

func (m *model) sync() {
	failed := m.failed
	if p := m.pendingRewrite; p != nil {
		m.pendingRewrite = nil
		if _, ok := m.prepared[*p]; ok && !failed {
			m.rewritten[*p] = true
		}
	}
	m.unsynced, m.failed, m.changedLT = false, false, false
	if m.status == 'I' {
		// The implicit transaction committed: its portals are closed.
		clear(m.portals)
		if !failed {
			m.endTx(true)
		}
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

// executesAhead counts the Executes up to the next Sync.
func executesAhead(rest []msg) int {
	n := 0
	for _, m := range rest {
		switch m.kind {
		case mSync:
			return n
		case mExecute:
			n++
		}
	}
	return n
}

// learn reads what pgguard did with the Parses of chunk ci that could be
// rewritten, from its answer through pgguard (msgs): a sync point whose
// statement pgguard rewrote carries its NOTICE. It reports whether that
// differs from what annotate assumed (then annotate again).
func learn(c chunk, msgs []backendMsg) bool {
	var segments [][]backendMsg
	var cur []backendMsg
	for _, m := range msgs {
		cur = append(cur, m)
		if m.typ == 'Z' {
			segments = append(segments, cur)
			cur = nil
		}
	}
	changed := false
	for j := range c {
		if c[j].kind != mParse || !rewritable(c[j].stmts[0]) || c[j].refused[0] {
			continue
		}
		// The ReadyForQuery that ends its batch.
		k, n := j, 0
		for ; k < len(c); k++ {
			if c[k].ready {
				n++
				if c[k].kind == mSync {
					break
				}
			}
		}
		for _, r := range c[:j] {
			if r.ready {
				n++
			}
		}
		if k == len(c) || n-1 >= len(segments) {
			continue
		}
		rewrote := false
		for _, m := range segments[n-1] {
			if m.typ == 'N' && strings.HasPrefix(field(m.body, 'M'), "pgguard:") && strings.Contains(field(m.body, 'M'), ": rewritten") {
				rewrote = true
			}
		}
		seen := int8(-1)
		if rewrote {
			seen = 1
		}
		if c[j].seen != seen {
			c[j].seen = seen
			if rewrote != c[j].rewrite {
				changed = true
			}
		}
	}
	return changed
}

package wiretest

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"time"
)

// gen draws random sessions. It follows each chunk it makes with the
// model, so that what comes next makes sense (a Sync after a Flush, a
// ROLLBACK after an error in a block, named statements that exist).
type gen struct {
	r      *rand.Rand
	m      *model
	total  int
	nNamed int
	// queue holds the rest of a shape of several writes, and s the
	// session being drawn (shapes add second-session actions to it).
	queue []chunk
	s     *session
	// notifying: a second session NOTIFYs the session during its writes
	// (it then never DISCARDs ALL, which would UNLISTEN).
	notifying bool
	nNotify   int
}

// rowStmts return several rows and never fail: fit for Execute with a row
// limit (PortalSuspended).
var rowStmts = []*stmt{sSeries, sSmall, sSelectT1, sBigFew, sWideRow}

func newGen(seed uint64, i int) *gen {
	return &gen{r: rand.New(rand.NewPCG(seed, uint64(i)))}
}

// session draws one session of one to six writes.
func (g *gen) session(name string) *session {
	g.m = newModel()
	s := &session{name: name}
	g.s = s
	n := 1 + g.r.IntN(6)
	g.notifying = g.r.IntN(8) == 0
	if g.notifying {
		// LISTEN alone, committed before anything is sent to it.
		g.add(chunk{query(sListenPeer)})
	}
	for len(s.chunks) < n || g.m.unsynced || g.m.copying != nil || len(g.queue) > 0 {
		if g.notifying && g.r.IntN(3) == 0 {
			g.notifyBurst(len(s.chunks), 2+g.r.IntN(5), time.Duration(g.r.IntN(15))*time.Millisecond, time.Duration(g.r.IntN(4))*time.Millisecond)
		}
		g.add(g.chunk())
	}
	if g.notifying && g.m.status != 'I' {
		// Notifications wait for the end of a block: the session ends
		// idle, so that every one is delivered on both sides.
		g.add(chunk{query(sRollback)})
	}
	if !g.notifying && g.r.IntN(12) == 0 {
		// Terminate in the same write as the last statement: the answer
		// comes first, then the end of the connection.
		last := &s.chunks[len(s.chunks)-1]
		*last = append(*last, terminateMsg())
	}
	return s
}

// add applies a chunk to the model and appends it to the session.
func (g *gen) add(c chunk) {
	for i := range c {
		g.m.step(c, i, c[i+1:])
	}
	g.s.chunks = append(g.s.chunks, c)
}

// notifyBurst has the second session NOTIFY count times from when chunk
// before is written.
func (g *gen) notifyBurst(before, count int, delay, gap time.Duration) {
	if !g.notifying {
		return
	}
	g.s.peers = append(g.s.peers, peerAction{before: before, kind: peerNotify, count: count, delay: delay, gap: gap, first: g.nNotify + 1})
	g.nNotify += count
}

func (g *gen) stmt() *stmt {
	if g.total == 0 {
		for _, s := range pool {
			g.total += s.weight
		}
	}
	n := g.r.IntN(g.total)
	for _, s := range pool {
		if n < s.weight {
			return s
		}
		n -= s.weight
	}
	panic("unreachable")
}

// plainStmt draws a statement fit for a multi-statement Query: no
// transaction control, no COPY FROM STDIN.
func (g *gen) plainStmt() *stmt {
	for {
		if s := g.stmt(); s.tx == txNone && s.copyIn == nil {
			return s
		}
	}
}

// sCopyGiveUp is a simple Query's COPY that the client ends with
// CopyFail: it fails.
var sCopyGiveUp = &stmt{sql: "COPY t1 (id, v) FROM STDIN", copyIn: []string{"1\tgiven up\n"}, fail: fExec, undo: "DELETE FROM t1"}

// sListenPeer listens to the second session's NOTIFYs.
var sListenPeer = &stmt{sql: "LISTEN " + peerChannel}

// shape draws one of the shapes that need several messages in a given
// order, or a second session; nil when none fits the session's state.
func (g *gen) shape() chunk {
	idle := g.m.status == 'I'
	switch g.r.IntN(7) {
	case 0:
		return g.copyShape()
	case 1:
		return g.errorThenSkipped()
	case 2:
		if idle {
			return g.rewrittenThenForgotten()
		}
	case 3:
		if idle {
			return g.lockThenRead()
		}
	case 4:
		// Rarer than the others: the second session's lock outlasts
		// pgguard's lock_timeout, so each costs most of a second.
		if idle && g.r.IntN(4) == 0 {
			return g.ddlRetried()
		}
	case 5:
		return g.cursorShape()
	case 6:
		if idle && !g.notifying {
			return chunk{query(sDiscardAll)}
		}
		return chunk{query(sDeallocAll)}
	}
	return nil
}

// copyShape: COPY FROM STDIN through the extended protocol as libpq
// sends it for PQexecParams (Parse, Bind, Describe, Execute, Sync, then
// the data, CopyDone and a Sync, in another write), with Syncs and
// Flushes among the data (PostgreSQL ignores them), or given up with
// CopyFail; or a simple Query's COPY given up.
func (g *gen) copyShape() chunk {
	s := sCopyIn
	if g.r.IntN(3) == 0 {
		s = sCopyBad
	}
	if g.r.IntN(4) == 0 {
		return chunk{query(sCopyGiveUp), copyData(sCopyGiveUp.copyIn[0]), copyFail()}
	}
	c := chunk{parse("", s), bind("", "")}
	if g.r.IntN(2) == 0 {
		c = append(c, describePortal(""))
	}
	c = append(c, execute("", 0))
	if g.r.IntN(3) > 0 {
		c = append(c, syncMsg()) // libpq's order
	}
	if g.r.IntN(2) == 0 {
		// The data in a write of its own, after the CopyInResponse.
		return c
	}
	return append(c, g.copyRest(s)...)
}

// copyRest is the data of COPY s, its end and a Sync.
func (g *gen) copyRest(s *stmt) chunk {
	var c chunk
	for i, d := range s.copyIn {
		c = append(c, copyData(d))
		if s.fail != fNone && i == len(s.copyIn)-1 {
			// The bad row fails the COPY as it is read: a Sync behind it
			// is then a Sync of the failed batch, not one COPY ignores.
			break
		}
		switch g.r.IntN(4) {
		case 0:
			c = append(c, syncMsg())
		case 1:
			c = append(c, flushMsg())
		}
	}
	if g.r.IntN(5) == 0 {
		c = append(c, copyFail())
	} else {
		c = append(c, copyDone())
	}
	return append(c, syncMsg())
}

// errorThenSkipped: an error in the middle of an extended batch, then,
// before its Sync, a simple Query, a FunctionCall and a Flush, which
// PostgreSQL skips (no answer at all), then the Sync.
func (g *gen) errorThenSkipped() chunk {
	fails := []*stmt{sDivZero, sUnknown, sFailMidRows, sTruncate}
	c := g.extended(g.r.IntN(2))
	c = append(c, runExt(fails[g.r.IntN(len(fails))])...)
	extra := []msg{query(g.plainStmt()), functionCall(), flushMsg()}
	g.r.Shuffle(len(extra), func(i, j int) { extra[i], extra[j] = extra[j], extra[i] })
	c = append(c, extra[:1+g.r.IntN(3)]...)
	return append(c, syncMsg())
}

// rewrittenThenForgotten: a named CREATE or DROP INDEX prepared alone
// (pgguard prepares its CONCURRENTLY rewrite), then forgotten by Close,
// DEALLOCATE, DEALLOCATE and an SQL PREPARE of the name, or DISCARD ALL;
// the name is bound again later, in a block or not.
func (g *gen) rewrittenThenForgotten() chunk {
	s := sIndexBig
	if g.r.IntN(3) == 0 {
		s = sDropIndex
	}
	g.nNamed++
	name := fmt.Sprintf("s%d", g.nNamed)
	first := chunk{parse(name, s), describeStmt(name), syncMsg()}
	if g.r.IntN(3) == 0 {
		first = chunk{parse(name, s), bind("", name), execute("", 0), syncMsg()}
	}
	var forget chunk
	switch g.r.IntN(5) {
	case 0:
		forget = chunk{closeStmt(name), syncMsg()}
	case 1:
		forget = chunk{query(&stmt{sql: "DEALLOCATE " + name, drops: name})}
	case 2:
		forget = chunk{query(&stmt{sql: "DEALLOCATE " + name, drops: name}, &stmt{sql: "PREPARE " + name + " AS SELECT 42", prepares: name, preparedAs: s42})}
	case 3:
		if !g.notifying {
			forget = chunk{query(sDiscardAll)}
		}
	}
	var again []chunk
	if g.r.IntN(2) == 0 {
		again = append(again, chunk{query(sBegin)})
	}
	again = append(again, chunk{bind("", name), execute("", 0), syncMsg()})
	if forget != nil {
		g.queue = append(g.queue, forget)
	}
	g.queue = append(g.queue, again...)
	return first
}

// lockThenRead: a REPEATABLE READ or SERIALIZABLE transaction whose first
// statement is LOCK TABLE, which waits for a second session's UPDATE to
// commit, then reads the row: LOCK takes no snapshot, so the read sees
// the update. A query of pgguard's own before the LOCK would take the
// snapshot earlier and hide it.
func (g *gen) lockThenRead() chunk {
	begin := sBeginRR
	if g.r.IntN(2) == 0 {
		begin = sBeginSe
	}
	lock := sLockShare
	if g.r.IntN(2) == 0 {
		lock = sLockExcl
	}
	before := len(g.s.chunks) + 1
	g.s.peers = append(g.s.peers, peerAction{before: before, kind: peerWriter, hold: time.Duration(20+g.r.IntN(100)) * time.Millisecond})
	g.notifyBurst(before, 2+g.r.IntN(4), 0, time.Duration(g.r.IntN(30))*time.Millisecond)
	lockChunk := chunk{query(lock)}
	if g.r.IntN(2) == 0 {
		lockChunk = ext(lock)
	}
	g.queue = append(g.queue, lockChunk, chunk{query(sReadPeer)})
	if g.r.IntN(2) == 0 {
		g.queue = append(g.queue, chunk{query(sInsertT1)}, ext(sCmin))
	}
	if g.r.IntN(2) == 0 {
		g.queue = append(g.queue, chunk{query(sDeclare)}, ext(sFetchC))
	}
	g.queue = append(g.queue, chunk{query(sTxInfo)})
	end := sCommit
	if g.r.IntN(3) == 0 {
		end = sRollback
	}
	if g.r.IntN(2) == 0 {
		g.queue = append(g.queue, chunk{query(end)})
	}
	return chunk{query(begin)}
}

// ddlRetried: a DDL alone in autocommit while a second session holds a
// lock on its table for longer than pgguard's lock_timeout: directly it
// waits; through pgguard it fails with 55P03 and is retried, and the
// client must see only the final answer (and the NOTIFYs that came
// meanwhile, in order).
func (g *gen) ddlRetried() chunk {
	before := len(g.s.chunks)
	g.s.peers = append(g.s.peers, peerAction{before: before, kind: peerLocker, hold: time.Duration(550+g.r.IntN(300)) * time.Millisecond})
	g.notifyBurst(before, 3+g.r.IntN(5), time.Duration(g.r.IntN(50))*time.Millisecond, time.Duration(50+g.r.IntN(150))*time.Millisecond)
	if g.r.IntN(2) == 0 {
		return ext(sAddColumn)
	}
	return chunk{query(sAddColumn)}
}

// cursorShape: SQL cursors, WITH HOLD or in a block.
func (g *gen) cursorShape() chunk {
	if g.m.status == 'I' && g.r.IntN(2) == 0 {
		g.queue = append(g.queue, chunk{query(sDeclare)}, ext(sFetchC), chunk{query(sFetchC)}, chunk{query(sCommit)})
		return chunk{query(sBegin)}
	}
	g.queue = append(g.queue, ext(sFetchH), chunk{query(sFetchH, sFetchH)})
	return chunk{query(sDeclHold)}
}

func (g *gen) chunk() chunk {
	if len(g.queue) > 0 {
		c := g.queue[0]
		g.queue = g.queue[1:]
		return c
	}
	switch {
	case g.m.copying != nil:
		// A COPY an Execute started and the write did not finish.
		return g.copyRest(g.m.copying)
	case g.m.unsynced:
		// After a Flush: more of the batch, then its Sync.
		c := g.extended(1 + g.r.IntN(2))
		return append(c, syncMsg())
	case g.m.status == 'E' && g.r.IntN(4) > 0:
		if g.r.IntN(2) == 0 {
			return chunk{query(sRollback)}
		}
		return append(chunk(runExt(sRollback)), syncMsg())
	}
	if g.r.IntN(4) == 0 {
		if c := g.shape(); c != nil {
			return c
		}
	}
	switch g.r.IntN(8) {
	case 0, 1: // one statement in one Query
		return g.simple(g.stmt())
	case 2: // several statements in one Query: an implicit transaction
		ss := []*stmt{g.plainStmt(), g.plainStmt()}
		if g.r.IntN(3) == 0 {
			ss = append(ss, g.plainStmt())
		}
		return chunk{query(ss...)}
	case 3: // several Queries in one write, answered one after the other
		var c chunk
		for range 2 + g.r.IntN(2) {
			c = append(c, g.simple(g.stmt())...)
		}
		return c
	case 4, 5: // an extended batch, sometimes with extra Syncs
		c := append(g.extended(1+g.r.IntN(3)), syncMsg())
		for g.r.IntN(4) == 0 {
			c = append(c, syncMsg())
		}
		return c
	case 6: // libpq pipeline mode: a Sync after every statement
		var c chunk
		for range 2 + g.r.IntN(2) {
			c = append(c, g.extended(1)...)
			c = append(c, syncMsg())
		}
		return c
	default: // Flush without Sync: the answers so far, and no ReadyForQuery
		return append(g.extended(1+g.r.IntN(2)), flushMsg())
	}
}

// simple is a one-statement Query, with its COPY data if it needs some.
func (g *gen) simple(s *stmt) chunk {
	c := chunk{query(s)}
	return append(c, copyIn(s)...)
}

func copyIn(s *stmt) []msg {
	if s.copyIn == nil {
		return nil
	}
	var ms []msg
	for _, d := range s.copyIn {
		ms = append(ms, copyData(d))
	}
	return append(ms, copyDone())
}

// extended draws n statements for the extended protocol, without Sync.
func (g *gen) extended(n int) chunk {
	var c chunk
	for range n {
		c = append(c, g.extendedOne()...)
	}
	return c
}

func (g *gen) extendedOne() []msg {
	if named := g.preparedNames(); len(named) > 0 && g.r.IntN(5) == 0 {
		// Run a statement prepared earlier in the session again.
		name := named[g.r.IntN(len(named))]
		return []msg{bind("", name), execute("", 0)}
	}
	s := g.stmt()
	if g.r.IntN(4) == 0 {
		s = rowStmts[g.r.IntN(len(rowStmts))]
	}
	name, portal := "", ""
	if g.r.IntN(3) == 0 {
		// Named statements outlive the batch. One pgguard prepared as its
		// CONCURRENTLY rewrite is refused when bound again where that
		// cannot run (the model knows which).
		g.nNamed++
		name = fmt.Sprintf("s%d", g.nNamed)
	}
	if g.r.IntN(4) == 0 {
		portal = "p"
	}
	ms := []msg{parse(name, s)}
	if g.r.IntN(4) == 0 {
		ms = append(ms, describeStmt(name))
	}
	ms = append(ms, bind(portal, name))
	if g.r.IntN(3) == 0 {
		ms = append(ms, describePortal(portal))
	}
	if s.fail == fNone && g.r.IntN(3) == 0 && slices.Contains(rowStmts, s) {
		// A row limit: PortalSuspended, then the rest.
		ms = append(ms, execute(portal, uint32(1+g.r.IntN(2))))
	}
	ms = append(ms, execute(portal, 0))
	return append(ms, copyIn(s)...)
}

func (g *gen) preparedNames() []string {
	var names []string
	for name, s := range g.m.prepared {
		if name != "" && s.copyIn == nil {
			names = append(names, name)
		}
	}
	// Map order is random; the seed must decide.
	slices.Sort(names)
	return names
}

package wiretest

import (
	"fmt"
	"math/rand/v2"
	"slices"
)

// gen draws random sessions. It follows each chunk it makes with the
// model, so that what comes next makes sense (a Sync after a Flush, a
// ROLLBACK after an error in a block, named statements that exist).
type gen struct {
	r      *rand.Rand
	m      *model
	total  int
	nNamed int
}

// rowStmts return several rows and never fail: fit for Execute with a row
// limit (PortalSuspended).
var rowStmts = []*stmt{sSeries, sSmall, sSelectT1, sBigFew, sWideRow}

func newGen(seed uint64, i int) *gen {
	return &gen{r: rand.New(rand.NewPCG(seed, uint64(i)))}
}

// session draws one session of one to six writes.
func (g *gen) session(name string) *session {
	g.m = &model{status: 'I', prepared: map[string]*stmt{}, portals: map[string]*stmt{}}
	s := &session{name: name}
	n := 1 + g.r.IntN(6)
	for len(s.chunks) < n || g.m.unsynced {
		c := g.chunk()
		for i := range c {
			g.m.step(c, i, c[i+1:])
		}
		s.chunks = append(s.chunks, c)
	}
	return s
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

func (g *gen) chunk() chunk {
	switch {
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
	if g.r.IntN(3) == 0 && s.verdict != vIndexBig {
		// Named statements outlive the batch. A rewritten CREATE INDEX is
		// kept unnamed: run again later inside a block, its CONCURRENTLY
		// form would fail where the original succeeds.
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

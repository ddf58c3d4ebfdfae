package proxy

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/pgguard/pgguard/internal/testkit/pgtest"
)

// Red team of lock_timeout in extended-protocol batches (batchlt.go):
// shapes that proxy/locktimeout_batch_test.go does not send. Each case is
// played directly against PostgreSQL and through pgguard with a raw client
// that writes exactly the messages given.

// rbStep is one step of rbPlay: a Query (q), a holder of ACCESS SHARE on
// a table for 2s (hold), or raw messages sent in one write (msgs) whose
// answer ends with rfq ReadyForQuery messages.
type rbStep struct {
	q    string
	hold string
	msgs []pgproto3.FrontendMessage
	rfq  int
}

func rbQ(q string) rbStep      { return rbStep{q: q} }
func rbHold(tbl string) rbStep { return rbStep{hold: tbl} }
func rbRaw(rfq int, msgs ...pgproto3.FrontendMessage) rbStep {
	return rbStep{msgs: msgs, rfq: rfq}
}

// rbPBE is Parse, Bind, Describe, Execute of the unnamed statement q.
func rbPBE(q string) []pgproto3.FrontendMessage {
	return []pgproto3.FrontendMessage{&pgproto3.Parse{Query: q}, &pgproto3.Bind{}, &pgproto3.Describe{ObjectType: 'P'}, &pgproto3.Execute{}}
}

func rbCat(parts ...any) []pgproto3.FrontendMessage {
	var out []pgproto3.FrontendMessage
	for _, p := range parts {
		switch p := p.(type) {
		case []pgproto3.FrontendMessage:
			out = append(out, p...)
		case pgproto3.FrontendMessage:
			out = append(out, p)
		}
	}
	return out
}

func rbPlay(t *testing.T, addr string, steps []rbStep) []string {
	t.Helper()
	ctx := context.Background()
	c := rawConnect(t, addr, "guard")
	var out []string
	var release []func()
	defer func() {
		for _, r := range release {
			r()
		}
	}()
	for i, s := range steps {
		if s.hold != "" {
			holder := connect(t, pg.DSN(pgtest.SuperUser, "guard"))
			mustExec(t, holder, "BEGIN")
			if tbl, ok := strings.CutPrefix(s.hold, "row "); ok {
				mustExec(t, holder, "SELECT 1 FROM "+tbl+" WHERE id = 1 FOR UPDATE")
			} else {
				mustExec(t, holder, "LOCK TABLE "+s.hold+" IN ACCESS SHARE MODE")
			}
			done := make(chan struct{})
			go func() { time.Sleep(2 * time.Second); holder.Exec(ctx, "COMMIT"); close(done) }()
			release = append(release, func() { <-done })
			continue
		}
		start := time.Now()
		n := 1
		if s.msgs != nil {
			c.send(s.msgs...)
			n = s.rfq
		} else {
			c.send(&pgproto3.Query{String: s.q})
		}
		got := c.until(n)
		line := strings.Join(got, " | ")
		if s.q != "" {
			line = s.q + " => " + line
		} else {
			line = "#" + string(rune('0'+i)) + " => " + line
		}
		if time.Since(start) > 1500*time.Millisecond {
			line += "  [WAITED]"
		}
		out = append(out, line)
	}
	return out
}

func rbCompare(t *testing.T, rules string, steps []rbStep) (direct, proxied []string) {
	t.Helper()
	if rules == "" {
		rules = rtRules
	}
	rtSetup(t)
	_, addr, _ := guardProxy(t, rules, nil)
	direct = rbPlay(t, pg.Addr(), steps)
	rtSetup(t)
	proxied = rbPlay(t, addr, steps)
	t.Logf("\n direct:\n   %s\n pgguard:\n   %s", strings.Join(direct, "\n   "), strings.Join(proxied, "\n   "))
	return
}

func rbSame(t *testing.T, direct, proxied []string, steps ...int) {
	t.Helper()
	for _, i := range steps {
		if direct[i] != proxied[i] {
			t.Errorf("step %d:\n direct:  %s\n pgguard: %s", i, direct[i], proxied[i])
		}
	}
}

// A batch of Binds alone inside a transaction block, the first of a
// statement pgguard does not know (a driver's cached SELECT), the second of
// a prepared ALTER. batchAhead took the unknown Bind for one that may end
// the block (a COMMIT), so pgguard's SET was a session-level one, and so
// was its put-back of the client's SET LOCAL 0: after COMMIT the session
// kept lock_timeout 0 with source 'session', where directly the SET LOCAL
// ended with the block (source 'default'). Only a Parse can prepare a
// statement that ends a block or a savepoint (SQL PREPARE cannot), so
// pgguard now notes the names of such Parses (txStmts) and takes any other
// Bind for application traffic: SET LOCAL.
func TestRedteamBatchLTUnknownBindFirstInBlock(t *testing.T) {
	t.Run("SET LOCAL 0, committed", func(t *testing.T) {
		d, p := rtCompare(t, "", []string{"@prepare s " + btAlter, "@prepare q SELECT 1", "BEGIN", "SET LOCAL lock_timeout = 0", "@run q s", "SHOW lock_timeout", btSource, "COMMIT", "SHOW lock_timeout", btSource})
		btSame(t, d, p, 4, 5, 6, 7, 8, 9)
	})
	t.Run("SET LOCAL 0 in a savepoint, released, committed", func(t *testing.T) {
		d, p := rtCompare(t, "", []string{"@prepare s " + btAlter, "@prepare q SELECT 1", "BEGIN", "SAVEPOINT a", "SET LOCAL lock_timeout = 0", "@run q s", "RELEASE a", "SHOW lock_timeout", btSource, "COMMIT", "SHOW lock_timeout", btSource})
		btSame(t, d, p, 5, 6, 7, 8, 9, 10, 11)
	})
	// The other side: a Bind of a prepared COMMIT ends the block before the
	// ALTER, which must still run with pgguard's lock_timeout.
	t.Run("prepared COMMIT bound first", func(t *testing.T) {
		d, p := rtCompare(t, "", []string{"@prepare c COMMIT", "@prepare s " + btAlter, "BEGIN", "SET LOCAL lock_timeout = 0", "@hold rt_t", "@run c s", "SHOW lock_timeout", btSource})
		btTimedOut(t, d, p, 4)
		btSame(t, d, p, 5)
	})
}

// The same batch, seen from pg_settings: pgguard asked the value inside
// the block (0, source 'session' from the client's SET LOCAL), set its own
// with a session-level SET (the COMMIT bound first ends the block), and put
// back "SET lock_timeout = '0'" after the batch, outside any block: the
// session is left with source 'session', where directly the SET LOCAL ended
// with the COMMIT and the source is 'default'. The Query "COMMIT; ALTER"
// after a SET LOCAL has the same put-back.
func TestRedteamBatchLTCommitBoundFirstSource(t *testing.T) {
	t.Skip("redteam: BEGIN; SET LOCAL lock_timeout = 0; batch [Bind COMMIT, Bind ALTER, Sync]: the put-back leaves source 'session' (directly 'default')")
	d, p := rtCompare(t, "", []string{"@prepare c COMMIT", "@prepare s " + btAlter, "BEGIN", "SET LOCAL lock_timeout = 0", "@run c s", "SHOW lock_timeout", btSource})
	btSame(t, d, p, 4, 5, 6)
}

// A batch whose first message is a Close (a driver that closes a statement
// it evicted from its cache, then runs the next batch in the same write),
// followed by Parse/Bind/Execute of SELECT 1 and of an ALTER: planAhead
// runs only when a batch starts with a Parse or a Bind, so the ALTER ran
// with the session's own lock_timeout (0) and waited for the holder, as
// directly. The README's "Not covered" names a Describe first, not a Close.
func TestRedteamBatchLTCloseFirst(t *testing.T) {
	t.Skip("redteam: a batch that starts with a Close (then Parse/Bind/Execute SELECT 1, ALTER, Sync) gets no lock_timeout: the ALTER waits with none")
	sync := &pgproto3.Sync{}
	d, p := rbCompare(t, "", []rbStep{
		rbHold("rt_t"),
		rbRaw(1, rbCat(&pgproto3.Close{ObjectType: 'S', Name: "gone"}, rbPBE("SELECT 1"), rbPBE(btAlter), sync)...),
		rbQ("SHOW lock_timeout"), rbQ(btSource),
	})
	btTimedOut(t, d, p, 0)
	rbSame(t, d, p, 1, 2)
}

// A simple Query in the middle of an unsynced extended batch: PostgreSQL
// runs it as its own transaction and answers it with a ReadyForQuery right
// there, then runs the rest of the batch. With a statement that blocks
// writes in the batch (before or after the Query), pgguard holds that first
// ReadyForQuery back and sends it behind the rest of the batch's answers:
// the client sees "... CommandComplete SELECT 1 | ParseComplete | ... |
// ReadyForQuery I | ReadyForQuery I" in place of the Query's ReadyForQuery
// between them (reordered).
func TestRedteamBatchLTQueryInBatch(t *testing.T) {
	t.Skip("redteam: a Query in the middle of an unsynced batch with DDL: its ReadyForQuery is held and sent after the rest of the batch's answers (reordered)")
	sync := &pgproto3.Sync{}
	t.Run("DDL after the Query", func(t *testing.T) {
		d, p := rbCompare(t, "", []rbStep{
			rbRaw(2, rbCat(rbPBE("SELECT 1"), &pgproto3.Query{String: "SELECT 2"}, rbPBE(btAlter), sync)...),
			rbQ("SHOW lock_timeout"), rbQ(btSource),
		})
		rbSame(t, d, p, 0, 1, 2)
	})
	t.Run("DDL before the Query", func(t *testing.T) {
		d, p := rbCompare(t, "", []rbStep{
			rbRaw(2, rbCat(rbPBE(btAlter), &pgproto3.Query{String: "SELECT 2"}, rbPBE("SELECT 3"), sync)...),
			rbQ("SHOW lock_timeout"), rbQ(btSource),
		})
		rbSame(t, d, p, 0, 1, 2)
	})
}

package wiretest

import (
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"
)

// A session is what one client sends: chunks, each written in one write.
type session struct {
	name   string
	chunks []chunk
	// ready is how many ReadyForQuery each chunk gets (annotate): a
	// Query, FunctionCall or Sync that PostgreSQL skips gets none.
	ready []int
	// idleIn is, for each chunk, the transaction status the session is
	// left idle in after it ('T' or 'E': idle in a transaction block), or
	// 0 when it is not idle (a batch or a COPY is still open): a second
	// connection then looks at the backend (observe).
	idleIn []byte
	// peers are what a second session does during the session (play).
	peers []peerAction
}

// peerKind is what a second session does beside the client's.
type peerKind int

const (
	// peerNotify sends count NOTIFYs on the channel the session listens
	// to, after delay, gap apart: they land while pgguard runs its own
	// queries, waits outside the lock queue or backs off a retry.
	peerNotify peerKind = iota
	// peerWriter updates small's row 2 in a transaction it commits after
	// hold: a LOCK TABLE small waits for it, and a REPEATABLE READ
	// transaction that reads after the LOCK sees the update.
	peerWriter
	// peerLocker holds ACCESS SHARE on t1 for hold: a DDL on t1 waits,
	// and through pgguard fails on its lock_timeout and is retried.
	peerLocker
)

// peerAction starts when chunk before is written (a writer or locker has
// its lock by then).
type peerAction struct {
	before int
	kind   peerKind
	delay  time.Duration
	gap    time.Duration
	hold   time.Duration
	count  int
	first  int // the first NOTIFY's number
}

// peerChannel is the channel of the second session's NOTIFYs, and
// peerPayload the start of their payloads.
const (
	peerChannel = "wire_peer"
	peerPayload = "peer "
)

func (s *session) notifies() bool {
	for _, p := range s.peers {
		if p.kind == peerNotify {
			return true
		}
	}
	return false
}

// ends reports whether the session ends with a Terminate.
func (s *session) ends() bool {
	if len(s.chunks) == 0 {
		return false
	}
	c := s.chunks[len(s.chunks)-1]
	return len(c) > 0 && c[len(c)-1].kind == mTerminate
}

type chunk []msg

type msgKind int

const (
	mQuery msgKind = iota
	mParse
	mBind
	mDescribe
	mExecute
	mClose
	mSync
	mFlush
	mCopyData
	mCopyDone
	mFunctionCall
	mTerminate
	mCopyFail
)

// msg is one frontend message. Query and Parse carry statements, whose
// verdict decides what the direct run sends instead (see annotate).
type msg struct {
	kind    msgKind
	stmts   []*stmt  // Query: one or more; Parse: exactly one
	name    string   // prepared statement (Parse, Bind, Describe/Close 'S')
	portal  string   // Bind, Execute, Describe/Close 'P'
	what    byte     // Describe and Close: 'S' or 'P'
	maxRows uint32   // Execute
	params  [][]byte // Bind, text format
	data    string   // CopyData

	// refused is filled by annotate: which statements the policy refuses
	// here, given the transaction status and what came before.
	refused []bool
	// refusedBind: a Bind pgguard refuses (a statement it prepared as
	// CONCURRENTLY, bound where that cannot run); the direct run binds a
	// statement that does not exist, which fails at the same point.
	refusedBind bool
	// rewrite (annotate): a Parse the model takes for one pgguard
	// prepares as its CONCURRENTLY rewrite; seen: what pgguard was seen
	// to do with it (1 rewrote, -1 did not, 0 not known yet), which
	// overrides the model: whether pgguard can rewrite depends on the
	// catalog questions it can ask at that moment (learn).
	rewrite bool
	seen    int8
	// ready (annotate): the message gets a ReadyForQuery.
	ready bool
}

// Constructors keep the hand-written sessions short.
func query(ss ...*stmt) msg { return msg{kind: mQuery, stmts: ss} }
func parse(name string, s *stmt) msg {
	return msg{kind: mParse, name: name, stmts: []*stmt{s}}
}
func bind(portal, name string, params ...string) msg {
	m := msg{kind: mBind, portal: portal, name: name}
	for _, p := range params {
		m.params = append(m.params, []byte(p))
	}
	return m
}
func describeStmt(name string) msg     { return msg{kind: mDescribe, what: 'S', name: name} }
func describePortal(portal string) msg { return msg{kind: mDescribe, what: 'P', portal: portal} }
func execute(portal string, maxRows uint32) msg {
	return msg{kind: mExecute, portal: portal, maxRows: maxRows}
}
func syncMsg() msg      { return msg{kind: mSync} }
func terminateMsg() msg { return msg{kind: mTerminate} }

// versionOID is version()'s OID: a FunctionCall whose answer is the same
// on both sides.
const versionOID = 89

func functionCall() msg         { return msg{kind: mFunctionCall} }
func closeStmt(name string) msg { return msg{kind: mClose, what: 'S', name: name} }
func flushMsg() msg             { return msg{kind: mFlush} }
func copyData(s string) msg     { return msg{kind: mCopyData, data: s} }
func copyDone() msg             { return msg{kind: mCopyDone} }
func copyFail() msg             { return msg{kind: mCopyFail} }

// runExt is the usual unnamed Parse, Bind, Execute of one statement.
func runExt(s *stmt) []msg { return []msg{parse("", s), bind("", ""), execute("", 0)} }

// directSubstitute replaces, in the direct run, a statement pgguard
// refuses: like pgguard's own marker it is a syntax error wherever it
// stands, so PostgreSQL fails at the same point of the protocol.
const directSubstitute = "pgguard_refused_direct"

// encode returns the bytes of a chunk as sent through pgguard (direct
// false) or straight to PostgreSQL (direct true).
func (c chunk) encode(direct bool) []byte {
	var b []byte
	for _, m := range c {
		b = m.encode(b, direct)
	}
	return b
}

func (m msg) sql(direct bool) string {
	parts := make([]string, len(m.stmts))
	for i, s := range m.stmts {
		parts[i] = s.sql
		if direct && m.refused != nil && m.refused[i] {
			parts[i] = directSubstitute
		}
	}
	return strings.Join(parts, "; ")
}

func (m msg) encode(dst []byte, direct bool) []byte {
	var fm pgproto3.FrontendMessage
	switch m.kind {
	case mQuery:
		fm = &pgproto3.Query{String: m.sql(direct)}
	case mParse:
		fm = &pgproto3.Parse{Name: m.name, Query: m.sql(direct)}
	case mBind:
		name := m.name
		if direct && m.refusedBind {
			name = directSubstitute
		}
		fm = &pgproto3.Bind{DestinationPortal: m.portal, PreparedStatement: name, Parameters: m.params}
	case mDescribe:
		fm = &pgproto3.Describe{ObjectType: m.what, Name: m.target()}
	case mExecute:
		fm = &pgproto3.Execute{Portal: m.portal, MaxRows: m.maxRows}
	case mClose:
		fm = &pgproto3.Close{ObjectType: m.what, Name: m.target()}
	case mSync:
		fm = &pgproto3.Sync{}
	case mFlush:
		fm = &pgproto3.Flush{}
	case mCopyData:
		fm = &pgproto3.CopyData{Data: []byte(m.data)}
	case mCopyDone:
		fm = &pgproto3.CopyDone{}
	case mFunctionCall:
		fm = &pgproto3.FunctionCall{Function: versionOID}
	case mTerminate:
		fm = &pgproto3.Terminate{}
	case mCopyFail:
		fm = &pgproto3.CopyFail{Message: "wire harness gives up"}
	}
	b, err := fm.Encode(dst)
	if err != nil {
		panic(err) // only messages over 1 GB fail
	}
	return b
}

func (m msg) target() string {
	if m.what == 'P' {
		return m.portal
	}
	return m.name
}

// expect is when the answer to the chunk is complete (see expect).
func (c chunk) expect() expect {
	var e expect
	for _, m := range c {
		switch m.kind {
		case mQuery, mSync, mFunctionCall:
			e.ready++
			e.terminals = 0
		case mExecute:
			e.terminals++
		}
	}
	if len(c) > 0 && c[len(c)-1].kind != mFlush {
		e.terminals = 0
	}
	return e
}

// String prints the session as a Go-like listing for failure messages,
// with the verdicts annotate found.
func (s *session) String() string {
	var b strings.Builder
	for i, c := range s.chunks {
		for _, p := range s.peers {
			if p.before == i {
				fmt.Fprintf(&b, "  second session: %s\n", p)
			}
		}
		fmt.Fprintf(&b, "  write %d:\n", i+1)
		for _, m := range c {
			fmt.Fprintf(&b, "    %s\n", m)
		}
	}
	return b.String()
}

func (m msg) String() string {
	stmts := func() string {
		parts := make([]string, len(m.stmts))
		for i, s := range m.stmts {
			parts[i] = abbreviate(s.sql)
			if m.refused != nil && m.refused[i] {
				parts[i] += " [refused]"
			} else if s.verdict == vIndexBig {
				parts[i] += " [rewritten]"
			}
		}
		return strings.Join(parts, "; ")
	}
	switch m.kind {
	case mQuery:
		return "Query " + stmts()
	case mParse:
		return fmt.Sprintf("Parse %q %s", m.name, stmts())
	case mBind:
		refused := ""
		if m.refusedBind {
			refused = " [refused]"
		}
		return fmt.Sprintf("Bind portal=%q stmt=%q params=%q%s", m.portal, m.name, m.params, refused)
	case mDescribe:
		return fmt.Sprintf("Describe %c %q", m.what, m.target())
	case mExecute:
		return fmt.Sprintf("Execute %q maxRows=%d", m.portal, m.maxRows)
	case mClose:
		return fmt.Sprintf("Close %c %q", m.what, m.target())
	case mSync:
		return "Sync"
	case mFlush:
		return "Flush"
	case mCopyData:
		return fmt.Sprintf("CopyData %q", abbreviate(m.data))
	case mCopyDone:
		return "CopyDone"
	case mCopyFail:
		return "CopyFail"
	case mFunctionCall:
		return "FunctionCall version()"
	case mTerminate:
		return "Terminate"
	}
	return "?"
}

func abbreviate(s string) string {
	if len(s) > 120 {
		return s[:100] + fmt.Sprintf("...(%d bytes)", len(s))
	}
	return s
}

func (p peerAction) String() string {
	switch p.kind {
	case peerNotify:
		return fmt.Sprintf("NOTIFY %s x%d (from %q%d) after %v, %v apart", peerChannel, p.count, peerPayload, p.first, p.delay, p.gap)
	case peerWriter:
		return fmt.Sprintf("UPDATE small row 2, committed after %v", p.hold)
	case peerLocker:
		return fmt.Sprintf("LOCK t1 IN ACCESS SHARE MODE for %v", p.hold)
	}
	return "?"
}

package enforce

import (
	"sync"
	"sync/atomic"

	"github.com/pgguard/pgguard/internal/wire"
)

// accounting follows what the server does with each client message, so
// that a sync message (Query, Sync, FunctionCall) the server never answers
// with a ReadyForQuery is not waited for, and a prepared statement that a
// failed Parse never made is forgotten. PostgreSQL (src/backend/tcop/postgres.c,
// commands/copyfromparse.c):
//
//   - after an error in an extended-protocol message it discards every
//     message up to Sync, a Query or FunctionCall among them, which then
//     get no ReadyForQuery; the Sync ends the skipping and is answered;
//   - outside COPY, CopyData, CopyDone and CopyFail are ignored;
//   - in COPY FROM STDIN it ignores Sync and Flush (libpq sends a Sync
//     right behind an Execute that turns out to be a COPY), ends the COPY
//     at CopyDone or CopyFail, and fails it at any other message, which it
//     consumes;
//   - every other message gets one answer that ends it: ParseComplete,
//     BindComplete, CloseComplete, NoData or RowDescription (Describe),
//     CommandComplete, EmptyQueryResponse or PortalSuspended (Execute), an
//     ErrorResponse, or ReadyForQuery (Query, FunctionCall, Sync).
//
// Every message written to the server is recorded, in the server's order
// (under Conns.ToServerMu, or on the event loop's thread); the
// server-to-client side matches the server's answers against them.
//
// One case stays ambiguous: when a COPY fails on bad data, the server has
// read ahead an unknown number of CopyData messages. A Sync the client put
// among them before CopyDone counts as ignored.
type accounting struct {
	mu sync.Mutex
	q  []sentMsg
	// undone are Parses that failed or were skipped, for the
	// client-to-server loop to forget what it recorded of them (settle).
	undone  []*stmtUndo
	nUndone atomic.Int32
	// undo is attached to the next Parse recorded (OnParse sets it).
	undo *stmtUndo
	// extOpen: an extended-protocol message was sent since the last Sync;
	// mayBeSkipped: a Query or FunctionCall was sent behind one, which
	// the server skips, unanswered until that Sync, if the batch failed.
	extOpen, mayBeSkipped bool

	// Owned by the server-to-client side.
	cur      sentMsg // the message whose answer runs; typ 0: none
	skipping bool    // an extended message failed: skip until Sync
	copyIn   bool    // in COPY FROM STDIN
}

// sentMsg is one recorded client message.
type sentMsg struct {
	typ  wire.ClientMsg
	undo *stmtUndo // a Parse's record of what it changed
}

// sent records a client message written to the server; a Parse takes
// the record set by setUndo.
func (a *accounting) sent(typ wire.ClientMsg) { a.record(typ, true) }

func (a *accounting) record(typ wire.ClientMsg, client bool) {
	switch typ {
	case wire.ClientCopyData, wire.ClientFlush, wire.ClientTerminate:
		return // answered by nothing, in any state that matters here
	}
	a.mu.Lock()
	switch typ {
	case wire.ClientSync:
		a.extOpen, a.mayBeSkipped = false, false
	case wire.ClientQuery, wire.ClientFunctionCall:
		a.mayBeSkipped = a.mayBeSkipped || a.extOpen
	case wire.ClientParse, wire.ClientBind, wire.ClientDescribe, wire.ClientExecute, wire.ClientClose:
		a.extOpen = true
	}
	sm := sentMsg{typ: typ}
	if typ == wire.ClientParse && client {
		sm.undo, a.undo = a.undo, nil
	}
	a.q = append(a.q, sm)
	a.mu.Unlock()
}

// sentFrames records every whole message of b, which pgguard wrote itself
// (its own queries, a refusal, a retry).
func (a *accounting) sentFrames(b []byte) {
	frames(b, func(typ wire.ClientMsg, _ []byte) bool {
		a.record(typ, false)
		return true
	})
}

// maySkip reports whether a Query or FunctionCall went out behind an
// extended-protocol batch that has had no Sync yet: if the batch failed,
// the server skips it and answers nothing until that Sync, which the
// client sends later, so waiting for it to be answered would never end.
func (a *accounting) maySkip() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.mayBeSkipped
}

func isSyncMsg(t wire.ClientMsg) bool {
	return t == wire.ClientQuery || t == wire.ClientSync || t == wire.ClientFunctionCall
}

// server matches one server message, whose header was just read, against
// the messages sent, and returns how many sync messages the server turned
// out to have skipped before it: none of them gets a ReadyForQuery.
func (a *accounting) server(typ wire.ServerMsg) (skipped int) {
	switch typ {
	case wire.ServerDataRow, wire.ServerNoticeResponse, wire.ServerParameterStatus, wire.ServerNotificationResponse:
		// Rows, and what may come at any time: nothing ends with them.
		if a.cur.typ != 0 || typ != wire.ServerDataRow {
			return 0
		}
	}
	if a.copyIn {
		switch typ {
		case wire.ServerCommandComplete, wire.ServerErrorResponse:
			skipped += a.endCopy(typ == wire.ServerErrorResponse)
			a.copyIn = false
		default:
			return skipped
		}
	}
	if a.cur.typ == 0 {
		n := 0
		a.cur, n = a.next()
		skipped += n
		if a.cur.typ == 0 {
			return skipped // nothing sent that this could answer
		}
	}
	switch a.cur.typ {
	case wire.ClientQuery, wire.ClientFunctionCall:
		switch typ {
		case wire.ServerCopyInResponse:
			a.copyIn = true
		case wire.ServerReadyForQuery:
			a.cur = sentMsg{}
		}
	case wire.ClientSync:
		if typ == wire.ServerReadyForQuery {
			a.cur, a.skipping = sentMsg{}, false
		}
	default: // an extended-protocol message
		switch typ {
		case wire.ServerParseComplete, wire.ServerBindComplete, wire.ServerCloseComplete, wire.ServerNoData,
			wire.ServerRowDescription, wire.ServerCommandComplete, wire.ServerEmptyQuery, wire.ServerPortalSuspended:
			a.cur = sentMsg{}
		case wire.ServerErrorResponse:
			a.fail(a.cur)
			a.cur, a.skipping = sentMsg{}, true
		case wire.ServerCopyInResponse:
			a.copyIn = true
		case wire.ServerReadyForQuery:
			// Out of step with the model: take it as the answer to the
			// first sync message sent.
			a.mu.Lock()
			for len(a.q) > 0 && !isSyncMsg(a.q[0].typ) {
				a.q = a.q[1:]
			}
			if len(a.q) > 0 {
				a.q = a.q[1:]
			}
			a.mu.Unlock()
			a.cur, a.skipping = sentMsg{}, false
		}
	}
	return skipped
}

// next takes the next message whose answer comes, dropping those the
// server ignores; it counts the sync messages among them.
func (a *accounting) next() (cur sentMsg, skipped int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	i := 0
	defer func() { a.q = a.q[i:] }()
	for ; i < len(a.q); i++ {
		sm := a.q[i]
		switch {
		case sm.typ == wire.ClientCopyDone || sm.typ == wire.ClientCopyFail:
			// Outside COPY: ignored.
		case a.skipping && sm.typ != wire.ClientSync:
			if isSyncMsg(sm.typ) {
				skipped++
			}
			a.failLocked(sm)
		default:
			i++
			return sm, skipped
		}
	}
	return sentMsg{}, skipped
}

// endCopy takes the messages a COPY FROM STDIN consumed, up to its
// CopyDone or CopyFail, or, when it failed, up to the message that failed it.
func (a *accounting) endCopy(failed bool) (skipped int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for len(a.q) > 0 {
		sm := a.q[0]
		switch sm.typ {
		case wire.ClientSync:
			skipped++ // ignored in COPY
		case wire.ClientCopyDone, wire.ClientCopyFail:
			a.q = a.q[1:]
			return skipped
		default:
			if !failed {
				return skipped
			}
			// Consumed by the error it raised.
			if isSyncMsg(sm.typ) {
				skipped++
			}
			a.failLocked(sm)
			a.q = a.q[1:]
			return skipped
		}
		a.q = a.q[1:]
	}
	return skipped
}

// fail notes that a message failed or was skipped.
func (a *accounting) fail(sm sentMsg) {
	if sm.undo == nil {
		return
	}
	a.mu.Lock()
	a.failLocked(sm)
	a.mu.Unlock()
}

func (a *accounting) failLocked(sm sentMsg) {
	if sm.undo != nil {
		a.undone = append(a.undone, sm.undo)
		a.nUndone.Add(1)
	}
}

// takeUndone returns the Parses that failed since the last call.
func (a *accounting) takeUndone() []*stmtUndo {
	if a.nUndone.Load() == 0 {
		return nil
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	u := a.undone
	a.undone = nil
	a.nUndone.Store(0)
	return u
}

// setUndo attaches u to the next Parse recorded (nil: none).
func (a *accounting) setUndo(u *stmtUndo) {
	a.mu.Lock()
	a.undo = u
	a.mu.Unlock()
}

package enforce

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/pgguard/pgguard/internal/wire"
)

// fakeSession is a session that never ends.
type fakeSession struct{ done chan struct{} }

func (f fakeSession) Done() <-chan struct{} { return f.done }
func (fakeSession) Closing() bool           { return false }
func (fakeSession) Close()                  {}
func (fakeSession) CancelRunning()          {}

// memMachine is a machine whose server is the bytes of answer and whose
// client and server writers are buffers.
type memMachine struct {
	*Machine
	toClient, toServer bytes.Buffer
}

func newMemMachine(maxHeld int, answer ...pgproto3.BackendMessage) *memMachine {
	var in []byte
	for _, msg := range answer {
		var err error
		if in, err = msg.Encode(in); err != nil {
			panic(err)
		}
	}
	mm := &memMachine{}
	conns := &Conns{
		FromClient: bufio.NewReader(strings.NewReader("")),
		FromServer: bufio.NewReader(bytes.NewReader(in)),
		ToClient:   bufio.NewWriter(&mm.toClient),
		ToServer:   bufio.NewWriter(&mm.toServer),
	}
	mm.Machine = New(conns, fakeSession{make(chan struct{})}, &State{}, Config{
		Log: slog.New(slog.DiscardHandler), MaxStatementMessage: 1 << 20, MaxHeldAnswer: maxHeld,
	})
	return mm
}

// queue queues sp as the next sync point, as the client-to-server loop
// does before it sends the message.
func (mm *memMachine) queue(sp *syncPoint) {
	sp.seq = mm.newSyncPoint()
	mm.syncs.push(sp)
}

// relay plays the server-to-client loop over the whole answer; every
// message must belong to a special sync point.
func (mm *memMachine) relay(t *testing.T) {
	t.Helper()
	for {
		typ, n, err := wire.ReadServerHeader(mm.conns.FromServer)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		special, err := mm.OnServerMessage(typ, n)
		if err != nil {
			t.Fatal(err)
		}
		if !special {
			t.Fatalf("message %c was not special", typ)
		}
	}
	mm.conns.ToClient.Flush()
}

// client lists what the client received, one short string per message.
func (mm *memMachine) client(t *testing.T) []string {
	t.Helper()
	fe := pgproto3.NewFrontend(bytes.NewReader(mm.toClient.Bytes()), io.Discard)
	var out []string
	for {
		msg, err := fe.Receive()
		if err == io.ErrUnexpectedEOF || err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		switch m := msg.(type) {
		case *pgproto3.ErrorResponse:
			out = append(out, "Error "+m.Code)
		case *pgproto3.NoticeResponse:
			out = append(out, "Notice "+m.Code)
		case *pgproto3.ReadyForQuery:
			out = append(out, "Ready "+string(m.TxStatus))
		case *pgproto3.CommandComplete:
			out = append(out, "Complete "+string(m.CommandTag))
		case *pgproto3.DataRow:
			out = append(out, fmt.Sprintf("Row %d", len(m.Values[0])))
		case *pgproto3.ParameterStatus:
			out = append(out, "Parameter "+m.Name)
		default:
			out = append(out, fmt.Sprintf("%T", m))
		}
	}
}

func errorResponse(code, msg string) *pgproto3.ErrorResponse {
	return &pgproto3.ErrorResponse{Severity: "ERROR", SeverityUnlocalized: "ERROR", Code: code, Message: msg}
}

func row(n int) *pgproto3.DataRow {
	return &pgproto3.DataRow{Values: [][]byte{bytes.Repeat([]byte("x"), n)}}
}

var ready = &pgproto3.ReadyForQuery{TxStatus: 'I'}

// The modes of a special sync point, each played on the answer the server
// gives it: what reaches the client, and what the waiter learns.
func TestSpecialSyncPointModes(t *testing.T) {
	notice := (&wire.PGError{Severity: "WARNING", Code: "01000", Message: "pgguard: warned"}).Encode(nil, true)
	refusal := &wire.PGError{Severity: "ERROR", Code: wire.CodeInsufficientPrivilege, Message: "pgguard: refused"}
	for _, c := range []struct {
		name    string
		maxHeld int
		sp      *syncPoint
		answer  []pgproto3.BackendMessage
		want    string // what the client gets
		check   func(t *testing.T, mm *memMachine, sp *syncPoint)
	}{{
		name:   "stream: notices first, marker's error replaced",
		sp:     &syncPoint{notices: [][]byte{notice}, swap: refusal, marker: "pgguard_refused_x"},
		answer: []pgproto3.BackendMessage{errorResponse("42601", `syntax error at or near "pgguard_refused_x"`), ready},
		want:   "Notice 01000, Error 42501, Ready I",
		check: func(t *testing.T, _ *memMachine, sp *syncPoint) {
			if !sp.swapped || sp.errCode != "42601" {
				t.Errorf("swapped %v, errCode %q", sp.swapped, sp.errCode)
			}
		},
	}, {
		name: "stream: another error passes",
		sp:   &syncPoint{swap: refusal, marker: "pgguard_refused_x"},
		answer: []pgproto3.BackendMessage{&pgproto3.NoticeResponse{Severity: "NOTICE", Code: "00000"},
			errorResponse("42P01", "relation does not exist"), ready},
		want: "Notice 00000, Error 42P01, Ready I",
	}, {
		name: "swallow: nothing but ParameterStatus reaches the client",
		sp:   &syncPoint{mode: swallow, done: make(chan struct{})},
		answer: []pgproto3.BackendMessage{&pgproto3.RowDescription{Fields: []pgproto3.FieldDescription{{Name: []byte("a")}}},
			row(3), &pgproto3.ParameterStatus{Name: "TimeZone", Value: "UTC"},
			&pgproto3.CommandComplete{CommandTag: []byte("SELECT 1")}, ready},
		want: "Parameter TimeZone",
		check: func(t *testing.T, mm *memMachine, sp *syncPoint) {
			if len(sp.out.rows) != 1 || *sp.out.rows[0][0] != "xxx" || sp.out.status != 'I' {
				t.Errorf("outcome %+v", sp.out)
			}
			if mm.state.TimeZone() != "UTC" {
				t.Error("ParameterStatus not recorded")
			}
		},
	}, {
		name:    "hold: the final answer goes out whole",
		maxHeld: 1 << 10,
		sp:      &syncPoint{mode: hold, retry: &retry{attempts: 2}, done: make(chan struct{})},
		answer:  []pgproto3.BackendMessage{&pgproto3.CommandComplete{CommandTag: []byte("ALTER TABLE")}, ready},
		want:    "Complete ALTER TABLE, Ready I",
	}, {
		name:    "hold: past the bound, released and streamed",
		maxHeld: 100,
		sp:      &syncPoint{mode: hold, retry: &retry{attempts: 2}, done: make(chan struct{})},
		answer:  []pgproto3.BackendMessage{row(40), row(40), row(40), errorResponse("55P03", "lock timeout"), ready},
		want:    "Row 40, Row 40, Row 40, Error 55P03, Ready I",
		check: func(t *testing.T, mm *memMachine, sp *syncPoint) {
			if sp.mode != stream || sp.retry.attempt != 0 || mm.toServer.Len() != 0 {
				t.Errorf("mode %d, retries %d, resent %d bytes", sp.mode, sp.retry.attempt, mm.toServer.Len())
			}
		},
	}, {
		name:    "hold: a lock_timeout failure is retried, the client sees only the last answer",
		maxHeld: 1 << 10,
		sp: &syncPoint{mode: hold, done: make(chan struct{}), retry: &retry{
			query: wire.Frame(wire.ClientQuery, []byte("ALTER TABLE big ADD c int\x00")), attempts: 2,
			initial: time.Millisecond, max: time.Millisecond}},
		answer: []pgproto3.BackendMessage{errorResponse("55P03", "lock timeout"), ready,
			errorResponse("55P03", "lock timeout"), ready,
			&pgproto3.CommandComplete{CommandTag: []byte("ALTER TABLE")}, ready},
		want: "Complete ALTER TABLE, Ready I",
		check: func(t *testing.T, mm *memMachine, sp *syncPoint) {
			if sp.retry.attempt != 2 || sp.out.errCode != "" {
				t.Errorf("retries %d, outcome %+v", sp.retry.attempt, sp.out)
			}
			if got := strings.Count(mm.toServer.String(), "ALTER TABLE big"); got != 2 {
				t.Errorf("statement resent %d times, want 2", got)
			}
		},
	}, {
		name:   "ReadyForQuery held for the waiter",
		sp:     &syncPoint{holdReady: true, done: make(chan struct{})},
		answer: []pgproto3.BackendMessage{errorResponse("57014", "canceling statement"), ready},
		want:   "Error 57014",
		check: func(t *testing.T, _ *memMachine, sp *syncPoint) {
			if sp.out.status != 'I' || sp.out.errCode != "57014" {
				t.Errorf("outcome %+v", sp.out)
			}
		},
	}} {
		t.Run(c.name, func(t *testing.T) {
			mm := newMemMachine(max(c.maxHeld, 1), c.answer...)
			mm.queue(c.sp)
			mm.relay(t)
			if got := strings.Join(mm.client(t), ", "); got != c.want {
				t.Errorf("client got %s\nwant %s", got, c.want)
			}
			if mm.Pending() != 0 || mm.received != 1 || mm.syncs.n.Load() != 0 {
				t.Errorf("pending %d, received %d, queued %d: the sync point did not end once", mm.Pending(), mm.received, mm.syncs.n.Load())
			}
			if c.sp.done != nil {
				select {
				case <-c.sp.done:
				default:
					t.Error("the waiter was not woken")
				}
			}
			if c.check != nil {
				c.check(t, mm, c.sp)
			}
		})
	}
}

// amend never waits for the server-to-client loop: while that loop holds
// the client writer (streaming an answer the server may finish only at
// the Sync still to come), the change is left to it, and made before it
// treats the sync point's next message. A new sync point is filled in and
// queued without the lock at all.
func TestAmendDoesNotWaitForTheServerLoop(t *testing.T) {
	mm := newMemMachine(1<<20,
		&pgproto3.ErrorResponse{Severity: "ERROR", Code: "42601", Message: "syntax error at or near \"" + rejectMarker + "\""},
		&pgproto3.ReadyForQuery{TxStatus: 'I'})
	mm.conns.ToClientMu.Lock() // the server-to-client loop, streaming
	done := make(chan struct{})
	var sp *syncPoint
	go func() {
		defer close(done)
		sp = mm.nextSpecial()
		mm.amend(sp, func(sp *syncPoint) { sp.events = nil }) // new: queued without the lock
		mm.amend(sp, func(sp *syncPoint) {                    // queued: left for the server loop
			sp.swap, sp.marker = &wire.PGError{Severity: "ERROR", Code: "42501", Message: "pgguard: refused"}, rejectMarker
		})
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("amend waited for the lock the server-to-client loop holds")
	}
	if sp.swap != nil || len(sp.pending) != 1 {
		t.Fatalf("swap %v, %d changes pending; want the change left pending", sp.swap, len(sp.pending))
	}
	mm.conns.ToClientMu.Unlock()
	mm.OnSync()
	mm.relay(t)
	mm.conns.ToClient.Flush()
	if got := mm.toClient.String(); !strings.Contains(got, "pgguard: refused") || strings.Contains(got, rejectMarker) {
		t.Fatalf("the client got %q; want pgguard's error in place of the marker's", got)
	}
}

// Package wire is the PostgreSQL protocol as pgguard relays it: message
// types typed by direction, framing with PostgreSQL's own length limits,
// ErrorResponse building, SQLSTATE codes, and socket I/O for the relay. It
// imports nothing of pgguard's.
package wire

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"unsafe"
)

// ClientMsg is the type byte of a message from the client (frontend), and
// ServerMsg of one from the server (backend). The protocol reuses letters
// across directions ('S' is Sync from a client and ParameterStatus from a
// server), so each direction has its own type.
type (
	ClientMsg byte
	ServerMsg byte
)

// Client message types that pgguard looks at.
const (
	ClientQuery        ClientMsg = 'Q'
	ClientParse        ClientMsg = 'P'
	ClientBind         ClientMsg = 'B'
	ClientExecute      ClientMsg = 'E'
	ClientDescribe     ClientMsg = 'D'
	ClientClose        ClientMsg = 'C'
	ClientSync         ClientMsg = 'S'
	ClientFlush        ClientMsg = 'H'
	ClientFunctionCall ClientMsg = 'F'
	ClientTerminate    ClientMsg = 'X'
	ClientCopyData     ClientMsg = 'd'
	ClientCopyDone     ClientMsg = 'c'
	ClientCopyFail     ClientMsg = 'f'
	ClientPassword     ClientMsg = 'p'
)

// Server message types that pgguard looks at.
const (
	ServerReadyForQuery    ServerMsg = 'Z'
	ServerErrorResponse    ServerMsg = 'E'
	ServerNoticeResponse   ServerMsg = 'N'
	ServerParameterStatus  ServerMsg = 'S'
	ServerBackendKeyData   ServerMsg = 'K'
	ServerAuthentication   ServerMsg = 'R'
	ServerCommandComplete  ServerMsg = 'C'
	ServerDataRow          ServerMsg = 'D'
	ServerEmptyQuery       ServerMsg = 'I'
	ServerPortalSuspended  ServerMsg = 's'
	ServerCopyInResponse   ServerMsg = 'G'
	ServerCopyOutResponse  ServerMsg = 'H'
	ServerCopyBothResponse ServerMsg = 'W'
	ServerCloseComplete    ServerMsg = '3'
	ServerParseComplete    ServerMsg = '1'
	ServerBindComplete     ServerMsg = '2'
	ServerNoData           ServerMsg = 'n'
	ServerRowDescription   ServerMsg = 'T'
	// ServerNotificationResponse is a NOTIFY delivered to a listening
	// session: asynchronous, it may come between any two messages.
	ServerNotificationResponse ServerMsg = 'A'
)

// PostgreSQL's own limits on a client message's length field (which counts
// itself): PQ_LARGE_MESSAGE_LIMIT for the messages that carry data, and
// PQ_SMALL_MESSAGE_LIMIT for the fixed-shape ones (src/backend/tcop/postgres.c).
// The server refuses a longer one at once, before its body arrives.
const (
	PQLargeMessageLimit = 1<<30 - 2
	PQSmallMessageLimit = 10000
)

// ClientLimit is the largest length field PostgreSQL accepts for a client
// message of type typ once the session runs, or 0 for a type it does not know.
func ClientLimit(typ ClientMsg) int {
	switch typ {
	case ClientQuery, ClientParse, ClientBind, ClientFunctionCall, ClientCopyData:
		return PQLargeMessageLimit
	case ClientExecute, ClientDescribe, ClientClose, ClientSync, ClientFlush, ClientTerminate, ClientCopyDone, ClientCopyFail:
		return PQSmallMessageLimit
	}
	return 0
}

// MaxStartupLength is PostgreSQL's own limit on a startup packet, not
// counting its length field (MAX_STARTUP_PACKET_LENGTH).
const MaxStartupLength = 10000

// ProtocolError is a client or server that broke the framing rules; the
// connection cannot be resynchronised after one.
type ProtocolError struct {
	Msg string
	// Silent marks a length field out of bounds: PostgreSQL only logs
	// that (COMMERROR) and ends the connection without a word to the client.
	Silent bool
	// Type is the message type byte of a client message of unknown type.
	Type byte
}

func (e *ProtocolError) Error() string { return e.Msg }

// ReadHeader reads a message's type byte and body length (the length field
// minus its own four bytes), refusing a length field over limit. It does not
// allocate.
func ReadHeader(r *bufio.Reader, limit int) (typ byte, bodyLen int, err error) {
	b, err := r.Peek(5)
	if err != nil {
		return 0, 0, err
	}
	typ = b[0]
	n := binary.BigEndian.Uint32(b[1:5])
	if n < 4 || uint64(n) > uint64(limit) {
		return 0, 0, &ProtocolError{Msg: fmt.Sprintf("invalid message length %d for message type %q", n, typ), Silent: true}
	}
	r.Discard(5)
	return typ, int(n) - 4, nil
}

// ReadClientHeader reads the header of a client message, with PostgreSQL's
// limits for its type: a message the server would refuse is refused here,
// before any of its body is read.
func ReadClientHeader(r *bufio.Reader) (ClientMsg, int, error) {
	b, err := r.Peek(1)
	if err != nil {
		return 0, 0, err
	}
	limit := ClientLimit(ClientMsg(b[0]))
	if limit == 0 {
		return 0, 0, &ProtocolError{Msg: fmt.Sprintf("invalid frontend message type %d", b[0]), Type: b[0]}
	}
	typ, n, err := ReadHeader(r, limit)
	return ClientMsg(typ), n, err
}

// ReadServerHeader reads the header of a server message. A server message
// may be as long as the protocol allows (a 1 GB DataRow); it is streamed.
func ReadServerHeader(r *bufio.Reader) (ServerMsg, int, error) {
	typ, n, err := ReadHeader(r, math.MaxInt32)
	return ServerMsg(typ), n, err
}

// WriteHeader writes a message header.
func WriteHeader[T ClientMsg | ServerMsg](w *bufio.Writer, typ T, bodyLen int) {
	// Appending to the writer's own free space keeps the header off the
	// heap: this runs for every relayed message.
	w.Write(binary.BigEndian.AppendUint32(append(w.AvailableBuffer(), byte(typ)), uint32(bodyLen+4)))
}

// CopyBody streams n bytes from r to w through r's buffer, without
// allocating, so a 10 MB DataRow costs no more memory than a small one.
func CopyBody(w *bufio.Writer, r *bufio.Reader, n int) error {
	for n > 0 {
		chunk := r.Buffered()
		if chunk == 0 {
			chunk = r.Size()
		}
		if chunk > n {
			chunk = n
		}
		b, err := r.Peek(chunk)
		if len(b) > 0 {
			if _, werr := w.Write(b); werr != nil {
				return werr
			}
			r.Discard(len(b))
			n -= len(b)
		}
		if err != nil && n > 0 {
			return err
		}
	}
	return nil
}

// ReadBody reads an n-byte body into buf (grown as needed) and returns it.
// Use it only for bodies known to be small; ReadGrowing for the rest.
func ReadBody(r *bufio.Reader, n int, buf []byte) ([]byte, error) {
	if cap(buf) < n {
		buf = make([]byte, n)
	}
	buf = buf[:n]
	_, err := io.ReadFull(r, buf)
	return buf, err
}

// A Reserver accounts the memory ReadGrowing allocates. Reserve is called
// before a buffer of n bytes is allocated and may wait or refuse: ReadGrowing
// then returns what it read so far and Reserve's error. Release is called
// with the capacity of a buffer Reserve paid for once it is dropped (the
// smaller one a growing body was copied out of).
type Reserver interface {
	Reserve(n int) error
	Release(n int)
}

// ReadGrowing reads an n-byte body into buf, growing buf only as bytes
// arrive: memory follows what the peer sent, not the length it declared.
// The capacities double from at most r.Size() bytes and end at exactly n, so
// a buffer is never more than twice what arrived (GrowingPeak). res, when
// not nil, pays for every allocation; buf must then be nil.
func ReadGrowing(r *bufio.Reader, n int, buf []byte, res Reserver) ([]byte, error) {
	buf = buf[:0]
	for len(buf) < n {
		if len(buf) == cap(buf) {
			c := growingStart(n, r.Size())
			if cap(buf) > 0 {
				c = min(n, 2*cap(buf))
			}
			if res != nil {
				if err := res.Reserve(c); err != nil {
					return buf, err
				}
			}
			old := cap(buf)
			buf = append(make([]byte, 0, c), buf...)
			if res != nil && old > 0 {
				res.Release(old)
			}
		}
		m, err := r.Read(buf[len(buf):min(n, cap(buf))])
		buf = buf[:len(buf)+m]
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return buf, err
		}
	}
	return buf, nil
}

// growingStart is ReadGrowing's first capacity for an n-byte body: n halved
// until it is at most size, so that doubling ends at n exactly.
func growingStart(n, size int) int {
	c := n
	for c > max(size, 1) {
		c = (c + 1) / 2
	}
	return c
}

// GrowingPeak is the most ReadGrowing holds at once, starting from an empty
// buf, for an n-byte body read through a reader of the given size: the last
// buffer and the one it was copied out of, about 1.5 n.
func GrowingPeak(n, size int) int {
	c := growingStart(n, size)
	peak := c
	for c < n {
		next := min(n, 2*c)
		peak = max(peak, c+next)
		c = next
	}
	return peak
}

// WriteMessage writes a whole message.
func WriteMessage[T ClientMsg | ServerMsg](w *bufio.Writer, typ T, body []byte) {
	WriteHeader(w, typ, len(body))
	w.Write(body)
}

// CString returns the NUL-terminated string at the start of b and the rest.
func CString(b []byte) (string, []byte, bool) {
	s, rest, ok := CStringBytes(b)
	return string(s), rest, ok
}

// CStringBytes is CString without the copy: the string is a slice of b.
func CStringBytes(b []byte) ([]byte, []byte, bool) {
	i := bytes.IndexByte(b, 0)
	if i < 0 {
		return nil, nil, false
	}
	return b[:i], b[i+1:], true
}

// BytesView is b as a string without a copy, for calls that only read it
// while b is unchanged (the policy's fast path, which keeps nothing).
func BytesView(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }

// Frame returns a whole message.
func Frame[T ClientMsg | ServerMsg](typ T, body []byte) []byte {
	b := make([]byte, 5, 5+len(body))
	b[0] = byte(typ)
	binary.BigEndian.PutUint32(b[1:], uint32(len(body)+4))
	return append(b, body...)
}

// ErrorFields returns the SQLSTATE and message of an ErrorResponse body.
func ErrorFields(body []byte) (code, msg string) {
	for len(body) > 1 {
		f := body[0]
		v, rest, ok := CString(body[1:])
		if !ok {
			break
		}
		switch f {
		case 'C':
			code = v
		case 'M':
			msg = v
		}
		body = rest
	}
	return code, msg
}

// DecodeDataRow decodes a DataRow into text columns (nil for NULL).
func DecodeDataRow(body []byte) []*string {
	if len(body) < 2 {
		return nil
	}
	n := int(binary.BigEndian.Uint16(body))
	body = body[2:]
	row := make([]*string, 0, n)
	for i := 0; i < n && len(body) >= 4; i++ {
		l := int32(binary.BigEndian.Uint32(body))
		body = body[4:]
		if l < 0 || int(l) > len(body) {
			row = append(row, nil)
			continue
		}
		v := string(body[:l])
		row = append(row, &v)
		body = body[l:]
	}
	return row
}

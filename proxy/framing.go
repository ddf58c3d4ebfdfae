package proxy

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"slices"
	"unsafe"
)

// clientMsg is the type byte of a message from the client (frontend), and
// serverMsg of one from the server (backend). The protocol reuses letters
// across directions ('S' is Sync from a client and ParameterStatus from a
// server), so each direction has its own type.
type (
	clientMsg byte
	serverMsg byte
)

// Client message types that pgguard looks at.
const (
	clientQuery        clientMsg = 'Q'
	clientParse        clientMsg = 'P'
	clientBind         clientMsg = 'B'
	clientExecute      clientMsg = 'E'
	clientDescribe     clientMsg = 'D'
	clientClose        clientMsg = 'C'
	clientSync         clientMsg = 'S'
	clientFlush        clientMsg = 'H'
	clientFunctionCall clientMsg = 'F'
	clientTerminate    clientMsg = 'X'
	clientCopyData     clientMsg = 'd'
	clientCopyDone     clientMsg = 'c'
	clientCopyFail     clientMsg = 'f'
	clientPassword     clientMsg = 'p'
)

// Server message types that pgguard looks at.
const (
	serverReadyForQuery    serverMsg = 'Z'
	serverErrorResponse    serverMsg = 'E'
	serverNoticeResponse   serverMsg = 'N'
	serverParameterStatus  serverMsg = 'S'
	serverBackendKeyData   serverMsg = 'K'
	serverAuthentication   serverMsg = 'R'
	serverCommandComplete  serverMsg = 'C'
	serverDataRow          serverMsg = 'D'
	serverEmptyQuery       serverMsg = 'I'
	serverPortalSuspended  serverMsg = 's'
	serverCopyInResponse   serverMsg = 'G'
	serverCopyOutResponse  serverMsg = 'H'
	serverCopyBothResponse serverMsg = 'W'
)

// PostgreSQL's own limits on a client message's length field (which counts
// itself): PQ_LARGE_MESSAGE_LIMIT for the messages that carry data, and
// PQ_SMALL_MESSAGE_LIMIT for the fixed-shape ones (src/backend/tcop/postgres.c).
// The server refuses a longer one at once, before its body arrives.
const (
	pqLargeMessageLimit = 1<<30 - 2
	pqSmallMessageLimit = 10000
)

// clientLimit is the largest length field PostgreSQL accepts for a client
// message of type typ once the session runs, or 0 for a type it does not know.
func clientLimit(typ clientMsg) int {
	switch typ {
	case clientQuery, clientParse, clientBind, clientFunctionCall, clientCopyData:
		return pqLargeMessageLimit
	case clientExecute, clientDescribe, clientClose, clientSync, clientFlush, clientTerminate, clientCopyDone, clientCopyFail:
		return pqSmallMessageLimit
	}
	return 0
}

// maxStartupLength is PostgreSQL's own limit on a startup packet.
const maxStartupLength = 10000

// protocolError is a client or server that broke the framing rules; the
// connection cannot be resynchronised after one.
type protocolError struct{ msg string }

func (e *protocolError) Error() string { return e.msg }

// readHeader reads a message's type byte and body length (the length field
// minus its own four bytes), refusing a length field over limit. It does not
// allocate.
func readHeader(r *bufio.Reader, limit int) (typ byte, bodyLen int, err error) {
	b, err := r.Peek(5)
	if err != nil {
		return 0, 0, err
	}
	typ = b[0]
	n := binary.BigEndian.Uint32(b[1:5])
	if n < 4 || uint64(n) > uint64(limit) {
		return 0, 0, &protocolError{fmt.Sprintf("invalid message length %d for message type %q", n, typ)}
	}
	r.Discard(5)
	return typ, int(n) - 4, nil
}

// readClientHeader reads the header of a client message, with PostgreSQL's
// limits for its type: a message the server would refuse is refused here,
// before any of its body is read.
func readClientHeader(r *bufio.Reader) (clientMsg, int, error) {
	b, err := r.Peek(1)
	if err != nil {
		return 0, 0, err
	}
	limit := clientLimit(clientMsg(b[0]))
	if limit == 0 {
		return 0, 0, &protocolError{fmt.Sprintf("invalid frontend message type %d", b[0])}
	}
	typ, n, err := readHeader(r, limit)
	return clientMsg(typ), n, err
}

// readServerHeader reads the header of a server message. A server message
// may be as long as the protocol allows (a 1 GB DataRow); it is streamed.
func readServerHeader(r *bufio.Reader) (serverMsg, int, error) {
	typ, n, err := readHeader(r, math.MaxInt32)
	return serverMsg(typ), n, err
}

// writeHeader writes a message header.
func writeHeader[T clientMsg | serverMsg](w *bufio.Writer, typ T, bodyLen int) {
	// Appending to the writer's own free space keeps the header off the
	// heap: this runs for every relayed message.
	w.Write(binary.BigEndian.AppendUint32(append(w.AvailableBuffer(), byte(typ)), uint32(bodyLen+4)))
}

// copyBody streams n bytes from r to w through r's buffer, without
// allocating, so a 10 MB DataRow costs no more memory than a small one.
func copyBody(w *bufio.Writer, r *bufio.Reader, n int) error {
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

// readBody reads an n-byte body into buf (grown as needed) and returns it.
// Use it only for bodies known to be small; readGrowing for the rest.
func readBody(r *bufio.Reader, n int, buf []byte) ([]byte, error) {
	if cap(buf) < n {
		buf = make([]byte, n)
	}
	buf = buf[:n]
	_, err := io.ReadFull(r, buf)
	return buf, err
}

// readGrowing reads an n-byte body into buf, growing buf only as bytes
// arrive: memory follows what the peer sent, not the length it declared.
func readGrowing(r *bufio.Reader, n int, buf []byte) ([]byte, error) {
	buf = buf[:0]
	for len(buf) < n {
		if len(buf) == cap(buf) {
			buf = slices.Grow(buf, min(n-len(buf), max(cap(buf), r.Size())))
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

// writeMessage writes a whole message.
func writeMessage[T clientMsg | serverMsg](w *bufio.Writer, typ T, body []byte) {
	writeHeader(w, typ, len(body))
	w.Write(body)
}

// cstring returns the NUL-terminated string at the start of b and the rest.
func cstring(b []byte) (string, []byte, bool) {
	s, rest, ok := cstringBytes(b)
	return string(s), rest, ok
}

// cstringBytes is cstring without the copy: the string is a slice of b.
func cstringBytes(b []byte) ([]byte, []byte, bool) {
	i := bytes.IndexByte(b, 0)
	if i < 0 {
		return nil, nil, false
	}
	return b[:i], b[i+1:], true
}

// bytesView is b as a string without a copy, for calls that only read it
// while b is unchanged (the policy's fast path, which keeps nothing).
func bytesView(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }

package proxy

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"unsafe"
)

// Protocol message type bytes that pgguard looks at.
const (
	msgQuery           = 'Q'
	msgParse           = 'P'
	msgSync            = 'S'
	msgTerminate       = 'X'
	msgFlush           = 'H'
	msgReadyForQuery   = 'Z'
	msgErrorResponse   = 'E'
	msgNoticeResponse  = 'N'
	msgParameterStatus = 'S'
	msgBackendKeyData  = 'K'
	msgAuthentication  = 'R'
	msgCommandComplete = 'C'
)

// maxStartupLength is PostgreSQL's own limit on a startup packet.
const maxStartupLength = 10000

// protocolError is a client or server that broke the framing rules; the
// connection cannot be resynchronised after one.
type protocolError struct{ msg string }

func (e *protocolError) Error() string { return e.msg }

// readHeader reads a message's type byte and body length (the length field
// minus its own four bytes). It does not allocate.
func readHeader(r *bufio.Reader) (typ byte, bodyLen int, err error) {
	b, err := r.Peek(5)
	if err != nil {
		return 0, 0, err
	}
	typ = b[0]
	n := binary.BigEndian.Uint32(b[1:5])
	if n < 4 || n > 1<<30+4 {
		return 0, 0, &protocolError{fmt.Sprintf("invalid message length %d for message type %q", n, typ)}
	}
	r.Discard(5)
	return typ, int(n) - 4, nil
}

// writeHeader writes a message header.
func writeHeader(w *bufio.Writer, typ byte, bodyLen int) {
	// Appending to the writer's own free space keeps the header off the
	// heap: this runs for every relayed message.
	w.Write(binary.BigEndian.AppendUint32(append(w.AvailableBuffer(), typ), uint32(bodyLen+4)))
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
func readBody(r *bufio.Reader, n int, buf []byte) ([]byte, error) {
	if cap(buf) < n {
		buf = make([]byte, n)
	}
	buf = buf[:n]
	_, err := io.ReadFull(r, buf)
	return buf, err
}

// writeMessage writes a whole message.
func writeMessage(w *bufio.Writer, typ byte, body []byte) {
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

package wiretest

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/pgguard/pgguard/internal/testkit/pgtest"
)

// readTimeout bounds the wait for each chunk's answer. A proxy that hangs
// is a divergence to report, not a test that hangs; it also bounds how long
// a failing run takes, since every hang costs this much.
var readTimeout = func() time.Duration {
	if d, err := time.ParseDuration(os.Getenv("PGGUARD_WIRE_TIMEOUT")); err == nil && d > 0 {
		return d
	}
	return 5 * time.Second
}()

// maxBody bounds a server message the client accepts; the largest the
// sessions ask for is a few hundred kB.
const maxBody = 16 << 20

// backendMsg is one server message as received: its type and raw body.
type backendMsg struct {
	typ  byte
	body []byte
}

// transcript is everything one side sent back during a session, and how
// the session ended when it did not end normally.
type transcript struct {
	msgs []backendMsg
	// stall is set when a chunk's answer did not arrive in time (a hang)
	// or the connection broke; nothing after it was played.
	stall string
}

// rawConn is a client that speaks the protocol from hand-built bytes, so
// that the test controls exactly what is in each write.
type rawConn struct {
	c net.Conn
	r *bufio.Reader
}

// dial connects to addr and does the startup as the superuser (trust
// authentication in pgtest), recording the server's startup messages.
func dial(addr, database string, tr *transcript) (*rawConn, error) {
	c, err := net.DialTimeout("tcp", addr, readTimeout)
	if err != nil {
		return nil, err
	}
	rc := &rawConn{c: c, r: bufio.NewReaderSize(c, 64<<10)}
	startup := &pgproto3.StartupMessage{
		ProtocolVersion: pgproto3.ProtocolVersionNumber,
		Parameters:      map[string]string{"user": pgtest.SuperUser, "database": database, "application_name": clientApp},
	}
	b, err := startup.Encode(nil)
	if err != nil {
		c.Close()
		return nil, err
	}
	if err := rc.play(b, expect{ready: 1}, tr); err != nil {
		c.Close()
		return nil, fmt.Errorf("startup: %w", err)
	}
	for _, m := range tr.msgs {
		if m.typ == 'E' {
			c.Close()
			return nil, fmt.Errorf("startup refused: %s", describe(m))
		}
	}
	return rc, nil
}

// expect says when the answer to a chunk is complete: after ready
// ReadyForQuery messages, and then, for a chunk that ends with Flush,
// after the answers to the Executes behind the last Sync (terminals), or
// an ErrorResponse, which makes the server skip the rest.
type expect struct {
	ready     int
	terminals int
}

// play writes chunk in one write and reads the answer into tr.
func (rc *rawConn) play(chunk []byte, want expect, tr *transcript) error {
	rc.c.SetDeadline(time.Now().Add(readTimeout))
	if _, err := rc.c.Write(chunk); err != nil {
		return err
	}
	ready, terminals := 0, 0
	for ready < want.ready || (want.terminals > 0 && terminals < want.terminals) {
		m, err := rc.read()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				return fmt.Errorf("no answer within %v (got %d of %d ReadyForQuery): hang", readTimeout, ready, want.ready)
			}
			return err
		}
		tr.msgs = append(tr.msgs, m)
		switch {
		case m.typ == 'Z':
			ready++
		case ready < want.ready:
		case m.typ == 'E':
			terminals = want.terminals
		case m.typ == 'C' || m.typ == 's' || m.typ == 'I':
			terminals++
		}
	}
	return nil
}

func (rc *rawConn) read() (backendMsg, error) {
	var hdr [5]byte
	if _, err := io.ReadFull(rc.r, hdr[:]); err != nil {
		return backendMsg{}, err
	}
	n := int(binary.BigEndian.Uint32(hdr[1:])) - 4
	if n < 0 || n > maxBody {
		return backendMsg{}, fmt.Errorf("server message %q with bad length %d", hdr[0], n)
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(rc.r, body); err != nil {
		return backendMsg{}, err
	}
	return backendMsg{typ: hdr[0], body: body}, nil
}

// eof waits for the server to end the connection, after a Terminate,
// reading whatever it still sends.
func (rc *rawConn) eof() error {
	rc.c.SetDeadline(time.Now().Add(readTimeout))
	for {
		m, err := rc.read()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		return fmt.Errorf("message %q after the answers to a Terminate", m.typ)
	}
}

// close sends Terminate and closes the connection.
func (rc *rawConn) close() {
	rc.c.SetDeadline(time.Now().Add(time.Second))
	rc.c.Write([]byte{'X', 0, 0, 0, 4})
	rc.c.Close()
}

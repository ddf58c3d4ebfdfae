package proxy

import (
	"bytes"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/pgguard/pgguard/internal/testkit/pgtest"
)

// played is what a server, or pgguard, answered to bytes a client played:
// each message in short form (its type, and for an ErrorResponse its
// severity and SQLSTATE), and whether the connection was still open after.
type played struct {
	msgs  []string
	texts []string // the ErrorResponses' messages, for the failure report
	open  bool
}

func (p played) String() string {
	return strings.Join(p.msgs, ", ") + map[bool]string{true: " (open)", false: " (closed)"}[p.open]
}

// probeQuery ends the bytes a case plays after login: a connection that is
// still open answers it, and its answer ends the reading.
const probeQuery = "SELECT 'still open'"

// playRaw connects to addr and plays a case: with tlsFirst, an SSLRequest
// and the TLS handshake it is answered with; with login, a StartupMessage
// for the trust superuser and its answer, then in and the probe Query, else
// in alone. It reads until the connection closes or the probe is answered.
func playRaw(t *testing.T, addr string, tlsFirst, login bool, in []byte) played {
	t.Helper()
	var conn net.Conn
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	if tlsFirst {
		conn.Write([]byte{0, 0, 0, 8, 4, 210, 22, 47})
		var b [1]byte
		if _, err := io.ReadFull(conn, b[:]); err != nil || b[0] != 'S' {
			t.Fatalf("SSLRequest answered %q, %v; want 'S'", b[:], err)
		}
		tc := tls.Client(conn, &tls.Config{InsecureSkipVerify: true})
		if err := tc.Handshake(); err != nil {
			t.Fatal(err)
		}
		conn = tc
	}
	fe := pgproto3.NewFrontend(conn, conn)
	var out played
	if login {
		fe.Send(&pgproto3.StartupMessage{ProtocolVersion: pgproto3.ProtocolVersionNumber,
			Parameters: map[string]string{"user": pgtest.SuperUser, "database": "guard"}})
		if err := fe.Flush(); err != nil {
			t.Fatal(err)
		}
		for {
			m, err := fe.Receive()
			if err != nil {
				t.Fatalf("login: %v", err)
			}
			if _, ok := m.(*pgproto3.ReadyForQuery); ok {
				break
			}
		}
		in = append(append([]byte(nil), in...), wireQuery(probeQuery)...)
	}
	if _, err := conn.Write(in); err != nil {
		t.Fatal(err)
	}
	for {
		m, err := fe.Receive()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				t.Fatalf("no answer within 10s after %v", out)
			}
			return out // end of file or reset: closed
		}
		switch m := m.(type) {
		case *pgproto3.ErrorResponse:
			out.msgs = append(out.msgs, "ErrorResponse "+m.Severity+" "+m.Code)
			out.texts = append(out.texts, m.Message)
		case *pgproto3.ParameterStatus:
			// Their number and values depend on the connection's settings.
		case *pgproto3.NoticeResponse:
			out.msgs = append(out.msgs, "NoticeResponse "+m.Severity+" "+m.Code)
		case *pgproto3.DataRow:
			out.msgs = append(out.msgs, "DataRow "+string(bytes.Join(m.Values, []byte(","))))
		default:
			out.msgs = append(out.msgs, summary(m))
		}
		if _, ok := m.(*pgproto3.ReadyForQuery); ok && (!login || slices.Contains(out.msgs, "DataRow still open")) {
			out.open = true
			return out
		}
	}
}

// wireQuery is a Query message for sql.
func wireQuery(sql string) []byte {
	return wireMsg('Q', sql+"\x00")
}

// wireMsg frames body as a message of type typ.
func wireMsg(typ byte, body string) []byte {
	b := binary.BigEndian.AppendUint32([]byte{typ}, uint32(len(body)+4))
	return append(b, body...)
}

// startupPacket frames a startup packet with the given protocol code.
func startupPacket(code uint32, body string) []byte {
	b := binary.BigEndian.AppendUint32(nil, uint32(len(body)+8))
	b = binary.BigEndian.AppendUint32(b, code)
	return append(b, body...)
}

// TestStartupAndMalformedLikePostgreSQL plays startup packets and malformed
// messages straight to PostgreSQL and through pgguard (with and without a
// policy) and compares the answers: message types, severities, SQLSTATEs,
// error messages, and whether the connection stays open. (GSSENCRequest is
// left out: PostgreSQL built with GSSAPI accepts it, pgguard declines it.)
func TestStartupAndMalformedLikePostgreSQL(t *testing.T) {
	tlsCfg, _ := clientTLS(t)
	_, plainAddr := startProxy(t, func(c *Config) { c.ClientTLS = tlsCfg })
	_, guardAddr, _ := guardProxy(t, "", func(c *Config) { c.ClientTLS = tlsCfg })
	const v3 = 3 << 16
	user := "user\x00" + pgtest.SuperUser + "\x00database\x00guard\x00"
	cases := []struct {
		name            string
		tlsFirst, login bool
		in              []byte
	}{
		// Startup.
		{name: "protocol 4.0", in: startupPacket(4<<16, user+"\x00")},
		{name: "protocol 3.1", in: startupPacket(v3|1, user+"\x00")},
		{name: "protocol 3.1 with an option", in: startupPacket(v3|1, user+"_pq_.x\x00y\x00\x00")},
		{name: "second SSLRequest", tlsFirst: true, in: []byte{0, 0, 0, 8, 4, 210, 22, 47}},
		{name: "no user", in: startupPacket(v3, "database\x00guard\x00\x00")},
		{name: "empty user", in: startupPacket(v3, "user\x00\x00database\x00guard\x00\x00")},
		{name: "no final NUL", in: startupPacket(v3, user)},
		{name: "value without its NUL", in: startupPacket(v3, "user\x00"+pgtest.SuperUser)},
		{name: "name without a value", in: startupPacket(v3, user+"application_name\x00")},
		{name: "largest startup packet", in: startupPacket(v3, user+"application_name\x00"+strings.Repeat("a", 10004-8-len(user)-len("application_name")-3)+"\x00\x00")},
		{name: "oversized startup packet", in: startupPacket(v3, user+"application_name\x00"+strings.Repeat("a", 10005-8-len(user)-len("application_name")-3)+"\x00\x00")},
		{name: "oversized length alone", in: []byte{0, 0, 0x27, 0x15, 0, 3, 0, 0}},
		{name: "short startup packet", in: []byte{0, 0, 0, 7, 0, 3, 0, 0}},
		// After login.
		{name: "query without NUL", login: true, in: wireMsg('Q', "SELECT 1")},
		{name: "query with bytes after NUL", login: true, in: wireMsg('Q', "SELECT 1\x00x")},
		{name: "parse without query NUL", login: true, in: append(wireMsg('P', "s1\x00SELECT 1"), wireMsg('S', "")...)},
		{name: "parse without name NUL", login: true, in: append(wireMsg('P', "s1"), wireMsg('S', "")...)},
		{name: "parse without NUL in a batch", login: true, in: bytes.Join([][]byte{
			wireMsg('P', "\x00SELECT 1\x00\x00\x00"), wireMsg('B', "\x00\x00\x00\x00\x00\x00\x00\x00"), wireMsg('E', "\x00\x00\x00\x00\x00"),
			wireMsg('P', "s2\x00SELECT 2"), wireMsg('B', "\x00\x00\x00\x00\x00\x00\x00\x00"), wireMsg('E', "\x00\x00\x00\x00\x00"),
			wireMsg('S', ""),
		}, nil)},
		{name: "oversized sync", login: true, in: []byte{'S', 0, 0, 0x27, 0x11}},
		{name: "oversized query", login: true, in: []byte{'Q', 0x40, 0, 0, 0}},
		{name: "unknown message type", login: true, in: wireMsg('Y', "")},
		{name: "statement then unknown message type", login: true, in: append(wireQuery("SELECT pg_sleep(0.2)"), wireMsg('Y', "")...)},
		{name: "statement then oversized sync", login: true, in: append(wireQuery("SELECT pg_sleep(0.2)"), 'S', 0, 0, 0x27, 0x11)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			direct := playRaw(t, pg.Addr(), c.tlsFirst, c.login, c.in)
			t.Logf("PostgreSQL: %v %q", direct, direct.texts)
			for _, via := range []struct{ name, addr string }{{"plain", plainAddr}, {"policy", guardAddr}} {
				got := playRaw(t, via.addr, c.tlsFirst, c.login, c.in)
				if got.String() != direct.String() || !slices.Equal(got.texts, direct.texts) {
					t.Errorf("through pgguard (%s): %v %q\ndirectly:               %v %q", via.name, got, got.texts, direct, direct.texts)
				}
			}
		})
	}
}

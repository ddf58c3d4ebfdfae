package proxy

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/pgguard/pgguard/internal/testkit/pgtest"
)

// fakeServer accepts one connection and runs script on it; it stands in for
// PostgreSQL only where a real server cannot be made to misbehave.
func fakeServer(t *testing.T, script func(be *pgproto3.Backend, conn net.Conn)) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		conn, err := l.Accept()
		if err != nil {
			return
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(10 * time.Second))
		be := pgproto3.NewBackend(conn, conn)
		if _, err := be.ReceiveStartupMessage(); err != nil {
			return
		}
		script(be, conn)
	}()
	return l.Addr().String()
}

// rawExchange writes b to addr and returns everything read until close.
func rawExchange(t *testing.T, addr string, b []byte) []byte {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	conn.Write(b)
	out, _ := io.ReadAll(conn)
	return out
}

// Startup packets PostgreSQL refuses get its answer from pgguard, in its
// words (TestStartupAndMalformedLikePostgreSQL compares them with the
// server's): an empty one is a connection closed without a word.
func TestStartupPacketErrors(t *testing.T) {
	_, addr := startProxy(t, nil)
	packet := func(n uint32, code uint32, body []byte) []byte {
		b := binary.BigEndian.AppendUint32(nil, n)
		b = binary.BigEndian.AppendUint32(b, code)
		return append(b, body...)
	}
	cases := []struct {
		name       string
		in         []byte
		code, want string
	}{
		{"too long", packet(100000, 196608, nil), "", ""},
		{"too short", packet(4, 196608, nil), "", ""},
		{"protocol 2", packet(9, 2<<16, []byte{0}), "0A000", "unsupported frontend protocol 2.0: server supports 3.0 to 3.0"},
		{"no user", packet(9, 196608, []byte{0}), "28000", "no PostgreSQL user name"},
		{"unterminated", packet(12, 196608, []byte("user")), "08P01", "invalid startup packet layout"},
		{"bad cancel", packet(12, codeCancelRequest, []byte{0, 0, 0, 1}), "08P01", "invalid length of cancel request"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out := rawExchange(t, addr, c.in)
			if c.code == "" {
				if len(out) > 0 {
					t.Fatalf("reply %q, want none", out)
				}
				return
			}
			if len(out) == 0 || out[0] != 'E' || !bytes.Contains(out, []byte(c.want)) || !bytes.Contains(out, []byte(c.code)) {
				t.Fatalf("reply %q, want FATAL %s %q", out, c.code, c.want)
			}
		})
	}
}

// A client that breaks framing after login is closed without a word, as
// PostgreSQL closes it; the proxy stays up for everyone else.
func TestClientBadMessageLength(t *testing.T) {
	_, addr := startProxy(t, nil)
	conn, err := pgconn.Connect(context.Background(), dsn(addr, pgtest.SuperUser, ""))
	if err != nil {
		t.Fatal(err)
	}
	raw := conn.Conn()
	raw.Write([]byte{'Q', 0, 0, 0, 2})
	raw.SetDeadline(time.Now().Add(5 * time.Second))
	out, err := io.ReadAll(raw)
	if len(out) > 0 || err != nil {
		t.Fatalf("reply %q, %v; want the connection closed without a word", out, err)
	}
	connect(t, dsn(addr, pgtest.SuperUser, ""))
}

func TestServerBadMessageLength(t *testing.T) {
	up := fakeServer(t, func(be *pgproto3.Backend, conn net.Conn) {
		be.Send(&pgproto3.AuthenticationOk{})
		be.Send(&pgproto3.ReadyForQuery{TxStatus: 'I'})
		be.Flush()
		be.Receive()
		conn.Write([]byte{'T', 0, 0, 0, 1}) // length below 4
	})
	_, addr := startProxy(t, func(c *Config) { c.Targets[0].Upstream = up })
	conn, err := pgconn.Connect(context.Background(), dsn(addr, "u", ""))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	_, err = conn.Exec(context.Background(), "SELECT 1").ReadAll()
	if err == nil || pgCode(err) != "08006" {
		t.Fatalf("err = %v, want 08006 from pgguard", err)
	}
}

func TestSCRAMPlusRemovedFromOffer(t *testing.T) {
	up := fakeServer(t, func(be *pgproto3.Backend, conn net.Conn) {
		be.Send(&pgproto3.AuthenticationSASL{AuthMechanisms: []string{"SCRAM-SHA-256-PLUS", "SCRAM-SHA-256"}})
		be.Flush()
	})
	_, addr := startProxy(t, func(c *Config) { c.Targets[0].Upstream = up })
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fe := pgproto3.NewFrontend(conn, conn)
	fe.Send(&pgproto3.StartupMessage{ProtocolVersion: pgproto3.ProtocolVersion30, Parameters: map[string]string{"user": "u"}})
	fe.Flush()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	msg, err := fe.Receive()
	if err != nil {
		t.Fatal(err)
	}
	sasl, ok := msg.(*pgproto3.AuthenticationSASL)
	if !ok {
		t.Fatalf("got %T", msg)
	}
	if m := sasl.AuthMechanisms; len(m) != 1 || m[0] != "SCRAM-SHA-256" {
		t.Fatalf("client was offered %v", m)
	}
}

func TestStripSCRAMPlus(t *testing.T) {
	body := []byte("\x00\x00\x00\x0aSCRAM-SHA-256-PLUS\x00SCRAM-SHA-256\x00\x00")
	out, stripped := stripSCRAMPlus(body)
	if !stripped || string(out) != "\x00\x00\x00\x0aSCRAM-SHA-256\x00\x00" {
		t.Fatalf("%q %v", out, stripped)
	}
	out, stripped = stripSCRAMPlus(out)
	if stripped || string(out) != "\x00\x00\x00\x0aSCRAM-SHA-256\x00\x00" {
		t.Fatalf("second pass %q %v", out, stripped)
	}
}

// FuzzClientStartup feeds arbitrary bytes to the startup phase: it must end
// with a startup, a cancel request or an error, never a panic or a hang.
func FuzzClientStartup(f *testing.F) {
	f.Add((&Startup{Version: 196608, Params: []Param{{"user", "a"}, {"database", "b"}}}).encode())
	f.Add([]byte{0, 0, 0, 8, 4, 210, 22, 47, 0, 0, 0, 9, 0, 3, 0, 0, 0})
	f.Add([]byte{0, 0, 0, 16, 4, 210, 22, 46, 0, 0, 0, 1, 0, 0, 0, 2})
	f.Fuzz(func(t *testing.T, in []byte) {
		a, b := net.Pipe()
		defer a.Close()
		defer b.Close()
		go io.Copy(io.Discard, b)
		a.SetDeadline(time.Now().Add(time.Second))
		r := bufio.NewReader(io.MultiReader(bytes.NewReader(in), strings.NewReader("")))
		_, _, s, c, err := clientStartup(a, r, nil)
		if err == nil && s == nil && c == nil {
			t.Fatal("no startup, no cancel and no error")
		}
	})
}

// Malformed messages after login, with the policy on: a length PostgreSQL
// refuses closes the connection without a word and without waiting for the
// body, an unknown type gets a FATAL 08P01 with a reason, and the proxy goes
// on serving others. (A Query or Parse that is not NUL-terminated goes to the
// server, which answers it: TestStartupAndMalformedLikePostgreSQL.)
func TestMalformedInspectedMessages(t *testing.T) {
	_, addr, _ := guardProxy(t, "", nil)
	msg := func(typ byte, body string) []byte {
		b := []byte{typ, 0, 0, 0, 0}
		binary.BigEndian.PutUint32(b[1:], uint32(len(body)+4))
		return append(b, body...)
	}
	cases := []struct {
		name string
		in   []byte
		want string
	}{
		// Lengths PostgreSQL refuses before reading the body (postgres.c
		// SocketBackend): the refusal must not wait for a gigabyte.
		{"oversized query", []byte{'Q', 0x3f, 0xff, 0xff, 0xff}, ""},
		{"oversized bind", []byte{'B', 0x40, 0x00, 0x00, 0x00}, ""},
		{"oversized sync", []byte{'S', 0x00, 0x00, 0x27, 0x11}, ""},
		{"unknown message type", msg('Y', ""), "invalid frontend message type"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			conn, err := pgconn.Connect(context.Background(), strings.Replace(dsn(addr, pgtest.SuperUser, ""), "/postgres?", "/guard?", 1))
			if err != nil {
				t.Fatal(err)
			}
			raw := conn.Conn()
			raw.SetDeadline(time.Now().Add(5 * time.Second))
			raw.Write(c.in)
			out, err := io.ReadAll(raw)
			if c.want == "" {
				if len(out) > 0 || err != nil {
					t.Fatalf("reply %q, %v; want the connection closed without a word", out, err)
				}
				return
			}
			if !bytes.Contains(out, []byte("08P01")) || !bytes.Contains(out, []byte(c.want)) {
				t.Fatalf("reply %q, want FATAL 08P01 %q", out, c.want)
			}
		})
	}
	ok, _ := guardConn(t, addr, pgtest.SuperUser, "")
	mustExec(t, ok, "SELECT 1")
}

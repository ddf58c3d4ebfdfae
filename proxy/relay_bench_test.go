package proxy

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/pgguard/pgguard/policy"

	"github.com/pgguard/pgguard/internal/wire"
)

// Benchmarks of the relay's hot path. The end-to-end ones run a real Server
// between a scripted client and a fake upstream on loopback, both of which
// work from canned bytes and allocate nothing per message, so allocs/op is
// what the proxy allocates per round trip. The traffic is what pgbench -S
// sends and gets back in each query mode.

// benchQuery is pgbench's select-only statement.
const benchQuery = "SELECT abalance FROM pgbench_accounts WHERE aid = $1;"

// benchRequests is one transaction's client messages per query mode.
var benchRequests = map[string][]byte{
	"simple": encodeMessages(&pgproto3.Query{String: "SELECT abalance FROM pgbench_accounts WHERE aid = 48213;"}),
	"extended": encodeMessages(
		&pgproto3.Parse{Query: benchQuery},
		&pgproto3.Bind{Parameters: [][]byte{[]byte("48213")}},
		&pgproto3.Describe{ObjectType: 'P'},
		&pgproto3.Execute{},
		&pgproto3.Sync{},
	),
	"prepared": encodeMessages(
		&pgproto3.Bind{PreparedStatement: "P0_1", Parameters: [][]byte{[]byte("48213")}},
		&pgproto3.Describe{ObjectType: 'P'},
		&pgproto3.Execute{},
		&pgproto3.Sync{},
	),
}

// benchPrepare is what pgbench -M prepared sends once per connection.
var benchPrepare = encodeMessages(&pgproto3.Parse{Name: "P0_1", Query: benchQuery}, &pgproto3.Sync{})

// Canned server answers, per client message type.
var (
	fakeLogin = encodeMessages(
		&pgproto3.AuthenticationOk{},
		&pgproto3.ParameterStatus{Name: "server_version", Value: "15.0"},
		&pgproto3.ParameterStatus{Name: "TimeZone", Value: "UTC"},
		&pgproto3.BackendKeyData{ProcessID: 4242, SecretKey: []byte{1, 2, 3, 4}},
		&pgproto3.ReadyForQuery{TxStatus: 'I'},
	)
	fakeRowDescription = encodeMessages(&pgproto3.RowDescription{Fields: []pgproto3.FieldDescription{
		{Name: []byte("abalance"), DataTypeOID: 23, DataTypeSize: 4, TypeModifier: -1},
	}})
	fakeResult = encodeMessages(
		&pgproto3.DataRow{Values: [][]byte{[]byte("0")}},
		&pgproto3.CommandComplete{CommandTag: []byte("SELECT 1")},
	)
	fakeReady = encodeMessages(&pgproto3.ReadyForQuery{TxStatus: 'I'})
	fakeReply = map[byte][]byte{
		'P': encodeMessages(&pgproto3.ParseComplete{}),
		'B': encodeMessages(&pgproto3.BindComplete{}),
		'D': fakeRowDescription,
		'E': fakeResult,
		'S': fakeReady,
		'Q': append(append(append([]byte(nil), fakeRowDescription...), fakeResult...), fakeReady...),
	}
)

func encodeMessages(msgs ...pgproto3.Message) []byte {
	var b []byte
	for _, m := range msgs {
		var err error
		if b, err = m.Encode(b); err != nil {
			panic(err)
		}
	}
	return b
}

// BenchmarkCopyMessages forwards a stream of small messages (64 pgbench -S
// transactions each way) and one 1 MiB row through wire.ReadHeader, wire.WriteHeader
// and wire.CopyBody, in memory: the framing cost without the network.
func BenchmarkCopyMessages(b *testing.B) {
	serverStream := bytes.Repeat(append(append(append(encodeMessages(&pgproto3.BindComplete{}), fakeRowDescription...), fakeResult...), fakeReady...), 64)
	bigRow := encodeMessages(&pgproto3.DataRow{Values: [][]byte{bytes.Repeat([]byte("x"), 1<<20)}})
	for _, bc := range []struct {
		name   string
		stream []byte
	}{
		{"client-prepared", bytes.Repeat(benchRequests["prepared"], 64)},
		{"client-simple", bytes.Repeat(benchRequests["simple"], 64)},
		{"server-prepared", serverStream},
		{"server-1MiB-row", bigRow},
	} {
		b.Run(bc.name, func(b *testing.B) {
			src := bytes.NewReader(bc.stream)
			r := bufio.NewReaderSize(src, readBufferSize)
			w := bufio.NewWriterSize(io.Discard, writeBufferSize)
			b.SetBytes(int64(len(bc.stream)))
			b.ReportAllocs()
			for b.Loop() {
				src.Reset(bc.stream)
				r.Reset(src)
				for {
					typ, n, err := wire.ReadServerHeader(r)
					if err == io.EOF {
						break
					}
					if err != nil {
						b.Fatal(err)
					}
					wire.WriteHeader(w, typ, n)
					if err := wire.CopyBody(w, r, n); err != nil {
						b.Fatal(err)
					}
				}
				if err := w.Flush(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkRelayRoundTrip is one pgbench -S transaction through the proxy
// and back, per query mode, as a pure relay and with the built-in policy.
// ns/op is mostly loopback latency; allocs/op is the proxy's.
func BenchmarkRelayRoundTrip(b *testing.B) {
	benchRelay(b, 1)
}

// BenchmarkRelayPipeline sends 64 transactions at once and reads the 64
// answers: the proxy's throughput when reads and writes can be batched.
func BenchmarkRelayPipeline(b *testing.B) {
	benchRelay(b, 64)
}

func benchRelay(b *testing.B, depth int) {
	for _, guarded := range []bool{false, true} {
		for _, mode := range []string{"simple", "extended", "prepared"} {
			name := "relay/" + mode
			if guarded {
				name = "policy/" + mode
			}
			b.Run(name, func(b *testing.B) {
				c := dialBenchProxy(b, guarded)
				if mode == "prepared" {
					c.roundTrip(b, benchPrepare, 1)
				}
				req := bytes.Repeat(benchRequests[mode], depth)
				b.SetBytes(int64(len(req)))
				b.ReportAllocs()
				for b.Loop() {
					c.roundTrip(b, req, depth)
				}
			})
		}
	}
}

// benchClient is a logged-in client connection through the proxy.
type benchClient struct {
	conn net.Conn
	r    *bufio.Reader
}

// roundTrip writes req and reads until the depth-th ReadyForQuery.
func (c *benchClient) roundTrip(b *testing.B, req []byte, depth int) {
	if _, err := c.conn.Write(req); err != nil {
		b.Fatal(err)
	}
	for depth > 0 {
		typ, n, err := wire.ReadServerHeader(c.r)
		if err != nil {
			b.Fatal(err)
		}
		if typ == wire.ServerErrorResponse {
			body, _ := c.r.Peek(n)
			b.Fatalf("error from the proxy: %q", body)
		}
		if _, err := c.r.Discard(n); err != nil {
			b.Fatal(err)
		}
		if typ == wire.ServerReadyForQuery {
			depth--
		}
	}
}

// dialBenchProxy starts a Server in front of a fake upstream (with the
// built-in policy when guarded) and returns a client logged in through it.
func dialBenchProxy(b *testing.B, guarded bool) *benchClient {
	b.Helper()
	cfg := Config{
		Targets: []Target{{Name: "bench", Listen: "127.0.0.1:0", Upstream: startFakeUpstream(b)}},
		Logger:  slog.New(slog.DiscardHandler),
	}
	if guarded {
		pc, err := policy.DefaultConfig()
		if err != nil {
			b.Fatal(err)
		}
		eng, err := policy.NewEngine(pc)
		if err != nil {
			b.Fatal(err)
		}
		cfg.Policy = NewPolicy(eng)
	}
	srv, err := New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	if err := srv.Listen(); err != nil {
		b.Fatal(err)
	}
	go srv.Serve()
	b.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	})
	conn, err := net.Dial("tcp", srv.Addrs()[0].String())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { conn.Close() })
	conn.(*net.TCPConn).SetNoDelay(true)
	c := &benchClient{conn: conn, r: bufio.NewReaderSize(conn, readBufferSize)}
	startup := encodeMessages(&pgproto3.StartupMessage{ProtocolVersion: pgproto3.ProtocolVersion30,
		Parameters: map[string]string{"user": "bench", "database": "bench"}})
	c.roundTrip(b, startup, 1)
	return c
}

// startFakeUpstream listens on loopback and serves every connection with
// serveFake until the benchmark ends.
func startFakeUpstream(b *testing.B) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { l.Close() })
	go func() {
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			go serveFake(conn)
		}
	}()
	return l.Addr().String()
}

// serveFake is a PostgreSQL stand-in: it accepts any login and answers each
// message from fakeReply, flushing when the client has nothing more
// buffered, as the server does.
func serveFake(conn net.Conn) {
	defer conn.Close()
	r := bufio.NewReaderSize(conn, readBufferSize)
	w := bufio.NewWriterSize(conn, writeBufferSize)
	var h [4]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return
	}
	if _, err := r.Discard(int(binary.BigEndian.Uint32(h[:])) - 4); err != nil {
		return
	}
	w.Write(fakeLogin)
	if w.Flush() != nil {
		return
	}
	for {
		typ, n, err := wire.ReadClientHeader(r)
		if err != nil || typ == wire.ClientTerminate {
			return
		}
		if _, err := r.Discard(n); err != nil {
			return
		}
		w.Write(fakeReply[byte(typ)])
		if r.Buffered() == 0 && w.Flush() != nil {
			return
		}
	}
}

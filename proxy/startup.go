package proxy

import (
	"bufio"
	"crypto/tls"
	"encoding/binary"
	"fmt"
	"io"
	"net"

	"github.com/pgguard/pgguard/internal/wire"
)

// Startup request codes (the "protocol version" of special startup packets).
const (
	codeCancelRequest = 80877102
	codeSSLRequest    = 80877103
	codeGSSENCRequest = 80877104
	protocolMajor3    = 3
)

// Param is one startup parameter; order is kept when relaying.
type Param struct{ Name, Value string }

// Startup is a client's StartupMessage.
type Startup struct {
	// Version is the requested protocol version (3.0 = 196608, 3.2 = 196610,
	// or any 3.x, which the server answers with NegotiateProtocolVersion).
	Version uint32
	Params  []Param
}

// Get returns the value of a startup parameter.
func (s *Startup) Get(name string) string {
	for _, p := range s.Params {
		if p.Name == name {
			return p.Value
		}
	}
	return ""
}

// Set replaces or appends a startup parameter.
func (s *Startup) Set(name, value string) {
	for i, p := range s.Params {
		if p.Name == name {
			s.Params[i].Value = value
			return
		}
	}
	s.Params = append(s.Params, Param{name, value})
}

// encode returns the packet as it goes on the wire.
func (s *Startup) encode() []byte {
	n := 8 + 1
	for _, p := range s.Params {
		n += len(p.Name) + len(p.Value) + 2
	}
	b := make([]byte, 8, n)
	binary.BigEndian.PutUint32(b, uint32(n))
	binary.BigEndian.PutUint32(b[4:], s.Version)
	for _, p := range s.Params {
		b = append(b, p.Name...)
		b = append(b, 0)
		b = append(b, p.Value...)
		b = append(b, 0)
	}
	return append(b, 0)
}

// cancelRequest is a client's CancelRequest: the backend's process id and
// secret key (4 bytes in protocol 3.0, up to 256 in 3.2).
type cancelRequest struct {
	pid uint32
	key []byte
}

// readStartupPacket reads one untyped startup packet (length, code, body).
func readStartupPacket(r *bufio.Reader) (code uint32, body []byte, err error) {
	var h [8]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return 0, nil, err
	}
	n := binary.BigEndian.Uint32(h[:4])
	if n < 8 || n-4 > wire.MaxStartupLength {
		// PostgreSQL logs "invalid length of startup packet" and closes
		// without a word (ProcessStartupPacket).
		return 0, nil, &wire.ProtocolError{Msg: fmt.Sprintf("invalid startup packet length %d", n), Silent: true}
	}
	body = make([]byte, n-8)
	if _, err := io.ReadFull(r, body); err != nil {
		return 0, nil, err
	}
	return binary.BigEndian.Uint32(h[4:]), body, nil
}

// errStartupLayout is PostgreSQL's answer to a startup packet whose
// parameters do not end with a NUL as its last byte, whatever is missing.
var errStartupLayout = &wire.ProtocolError{Msg: "invalid startup packet layout: expected terminator as last byte"}

func parseStartup(version uint32, body []byte) (*Startup, error) {
	s := &Startup{Version: version}
	for len(body) > 0 && body[0] != 0 {
		name, rest, ok := wire.CString(body)
		if !ok {
			return nil, errStartupLayout
		}
		value, rest2, ok := wire.CString(rest)
		if !ok {
			return nil, errStartupLayout
		}
		s.Params = append(s.Params, Param{name, value})
		body = rest2
	}
	if len(body) != 1 {
		return nil, errStartupLayout
	}
	if s.Get("user") == "" {
		return nil, &wire.PGError{Severity: "FATAL", Code: wire.CodeInvalidAuthorization, Message: "no PostgreSQL user name specified in startup packet"}
	}
	return s, nil
}

// errPlaintextAfterSSL is a client that sent more bytes right behind its
// SSLRequest, before the TLS handshake; they cannot be trusted (CVE-2021-23214).
var errPlaintextAfterSSL = &wire.ProtocolError{Msg: "received unencrypted data after SSL request"}

// clientStartup runs the client side of the startup phase until it has a
// StartupMessage or a CancelRequest. It answers SSLRequest (upgrading conn
// when TLS is configured) and GSSENCRequest ('N'). It returns the connection
// and reader to use from then on, which change after a TLS upgrade.
func clientStartup(conn net.Conn, r *bufio.Reader, tlsConfig *tls.Config) (net.Conn, *bufio.Reader, *Startup, *cancelRequest, error) {
	sslDone, gssDone := false, false
	for {
		code, body, err := readStartupPacket(r)
		if err != nil {
			return conn, r, nil, nil, err
		}
		switch {
		case code == codeSSLRequest && !sslDone && len(body) == 0:
			sslDone = true
			if tlsConfig == nil {
				if _, err := conn.Write([]byte{'N'}); err != nil {
					return conn, r, nil, nil, err
				}
				continue
			}
			if r.Buffered() > 0 {
				return conn, r, nil, nil, errPlaintextAfterSSL
			}
			if _, err := conn.Write([]byte{'S'}); err != nil {
				return conn, r, nil, nil, err
			}
			tconn := tls.Server(conn, tlsConfig)
			if err := tconn.Handshake(); err != nil {
				return conn, r, nil, nil, fmt.Errorf("client TLS handshake: %w", err)
			}
			conn = tconn
			r = bufio.NewReaderSize(conn, r.Size())
		case code == codeGSSENCRequest && !gssDone && len(body) == 0:
			gssDone = true
			if _, err := conn.Write([]byte{'N'}); err != nil {
				return conn, r, nil, nil, err
			}
		case code == codeCancelRequest:
			if len(body) < 8 || len(body) > 4+256 {
				return conn, r, nil, nil, &wire.ProtocolError{Msg: "invalid length of cancel request"}
			}
			return conn, r, nil, &cancelRequest{pid: binary.BigEndian.Uint32(body), key: body[4:]}, nil
		case code>>16 == protocolMajor3:
			s, err := parseStartup(code, body)
			return conn, r, s, nil, err
		default:
			// As PostgreSQL answers any other major version, and a second
			// SSLRequest or GSSENCRequest (1234.5679, 1234.5680). 3.0 to
			// 3.0 is what PostgreSQL 15 (up to 17) supports; a minor
			// version above the server's gets its NegotiateProtocolVersion,
			// relayed.
			return conn, r, nil, nil, &wire.PGError{Severity: "FATAL", Code: wire.CodeFeatureNotSupported,
				Message: fmt.Sprintf("unsupported frontend protocol %d.%d: server supports 3.0 to 3.0", code>>16, code&0xffff)}
		}
	}
}

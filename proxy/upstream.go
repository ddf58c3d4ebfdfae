package proxy

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"time"
)

// dialUpstream connects to the target's server and negotiates TLS as the
// target says. The deadline of ctx bounds the whole exchange.
func dialUpstream(ctx context.Context, t *Target) (net.Conn, error) {
	network, addr, err := UpstreamNetwork(t.Upstream)
	if err != nil {
		return nil, err
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		tc.SetNoDelay(true)
		tc.SetKeepAlive(true)
		tc.SetKeepAlivePeriod(30 * time.Second)
	}
	if t.UpstreamTLS == TLSDisable || t.UpstreamTLS == "" || network == "unix" {
		return conn, nil
	}
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
		defer conn.SetDeadline(time.Time{})
	}
	var req [8]byte
	binary.BigEndian.PutUint32(req[:4], 8)
	binary.BigEndian.PutUint32(req[4:], codeSSLRequest)
	if _, err := conn.Write(req[:]); err != nil {
		conn.Close()
		return nil, err
	}
	var resp [1]byte
	if _, err := io.ReadFull(conn, resp[:]); err != nil {
		conn.Close()
		return nil, fmt.Errorf("reading SSL response: %w", err)
	}
	if resp[0] != 'S' {
		conn.Close()
		return nil, fmt.Errorf("server does not support SSL, but upstream TLS is %s", t.UpstreamTLS)
	}
	tconn := tls.Client(conn, t.UpstreamTLSConfig)
	if err := tconn.HandshakeContext(ctx); err != nil {
		conn.Close()
		return nil, fmt.Errorf("upstream TLS handshake: %w", err)
	}
	return tconn, nil
}

// sendCancel forwards a CancelRequest for a backend over a fresh upstream
// connection, as libpq does: the server reads it and closes.
func sendCancel(ctx context.Context, t *Target, pid uint32, key []byte) error {
	conn, err := dialUpstream(ctx, t)
	if err != nil {
		return err
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	b := make([]byte, 12, 8+4+len(key))
	binary.BigEndian.PutUint32(b, uint32(12+len(key)))
	binary.BigEndian.PutUint32(b[4:], codeCancelRequest)
	binary.BigEndian.PutUint32(b[8:], pid)
	b = append(b, key...)
	if _, err := conn.Write(b); err != nil {
		return err
	}
	// The server closes the connection once it has the request; waiting
	// for that makes the cancel happen before we return.
	var one [1]byte
	conn.Read(one[:])
	return nil
}

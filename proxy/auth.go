package proxy

import (
	"bytes"
	"encoding/binary"
	"fmt"

	"github.com/pgguard/pgguard/internal/wire"
)

// Authentication request codes ('R' messages) that expect a client answer.
const (
	authOk                = 0
	authCleartextPassword = 3
	authMD5Password       = 5
	authGSS               = 7
	authGSSContinue       = 8
	authSSPI              = 9
	authSASL              = 10
	authSASLContinue      = 11
	authSASLFinal         = 12
)

const scramPlus = "SCRAM-SHA-256-PLUS"

// stripSCRAMPlus removes SCRAM-SHA-256-PLUS from an AuthenticationSASL body
// (code + NUL-terminated mechanism names + a final NUL). Channel binding ties
// the SCRAM proof to the TLS certificate the client sees, which is pgguard's,
// not the server's, so it can never succeed through a TLS-terminating proxy.
func stripSCRAMPlus(body []byte) (out []byte, stripped bool) {
	if len(body) < 4 {
		return body, false
	}
	out = append(make([]byte, 0, len(body)), body[:4]...)
	rest := body[4:]
	for len(rest) > 0 && rest[0] != 0 {
		name, r, ok := wire.CString(rest)
		if !ok {
			return body, false
		}
		rest = r
		if name == scramPlus {
			stripped = true
			continue
		}
		out = append(out, name...)
		out = append(out, 0)
	}
	return append(out, 0), stripped
}

// clientWantsChannelBinding reports whether a SASLInitialResponse ('p' body)
// carries the gs2 flag "y": the client supports channel binding and believes
// the server does not. A server on TLS refuses that as a downgrade attack.
func clientWantsChannelBinding(body []byte) bool {
	_, rest, ok := wire.CString(body)
	if !ok || len(rest) < 5 {
		return false
	}
	n := int32(binary.BigEndian.Uint32(rest))
	data := rest[4:]
	return n > 0 && bytes.HasPrefix(data, []byte("y,"))
}

// relayAuth relays the authentication exchange between client and server
// until the server's first ReadyForQuery, recording BackendKeyData and
// ParameterStatus on the way. It returns a *wire.PGError to report to the client
// when pgguard itself must refuse the login.
func (s *Session) relayAuth() error {
	var buf []byte
	strippedPlus := false
	for {
		typ, n, err := wire.ReadServerHeader(s.conns.FromServer)
		if err != nil {
			return fmt.Errorf("reading from server during authentication: %w", err)
		}
		if n > 1<<20 {
			return &wire.ProtocolError{Msg: fmt.Sprintf("server message %q of %d bytes during authentication", typ, n)}
		}
		buf, err = wire.ReadBody(s.conns.FromServer, n, buf)
		if err != nil {
			return err
		}
		body := buf
		expectAnswer := false
		switch typ {
		case wire.ServerAuthentication:
			if len(body) < 4 {
				return &wire.ProtocolError{Msg: "short authentication message from server"}
			}
			switch binary.BigEndian.Uint32(body) {
			case authSASL:
				body, strippedPlus = stripSCRAMPlus(body)
				expectAnswer = true
			case authCleartextPassword, authMD5Password, authGSS, authGSSContinue, authSSPI, authSASLContinue:
				expectAnswer = true
			}
		case wire.ServerBackendKeyData:
			if len(body) >= 8 {
				s.state.SetBackendKey(binary.BigEndian.Uint32(body), body[4:])
			}
		case wire.ServerParameterStatus:
			s.state.SetParameter(body)
		case wire.ServerErrorResponse:
			wire.WriteMessage(s.conns.ToClient, typ, body)
			s.conns.ToClient.Flush()
			return errLoginRefused
		case wire.ServerReadyForQuery:
			if len(body) == 1 {
				s.state.SetTxStatus(body[0])
			}
			wire.WriteMessage(s.conns.ToClient, typ, body)
			return s.conns.ToClient.Flush()
		}
		wire.WriteMessage(s.conns.ToClient, typ, body)
		if !expectAnswer {
			continue
		}
		if err := s.conns.ToClient.Flush(); err != nil {
			return err
		}
		ctyp, cn, err := wire.ReadHeader(s.conns.FromClient, 1<<16+4)
		if err != nil {
			return fmt.Errorf("reading from client during authentication: %w", err)
		}
		if wire.ClientMsg(ctyp) != wire.ClientPassword {
			return &wire.ProtocolError{Msg: fmt.Sprintf("expected password response, got message type %q", ctyp)}
		}
		cbody, err := wire.ReadBody(s.conns.FromClient, cn, nil)
		if err != nil {
			return err
		}
		if strippedPlus && clientWantsChannelBinding(cbody) {
			return &wire.PGError{
				Severity: "FATAL", Code: "28000",
				Message: "pgguard: SCRAM channel binding cannot pass through pgguard",
				Detail:  "The client is on TLS and supports channel binding, and the server is on TLS too; the server would refuse this login as a channel-binding downgrade.",
				Hint:    "Connect with channel_binding=disable, or let pgguard reach the server without TLS on a trusted network (upstream TLS disable).",
			}
		}
		wire.WriteMessage(s.conns.ToServer, wire.ClientPassword, cbody)
		if err := s.conns.ToServer.Flush(); err != nil {
			return err
		}
	}
}

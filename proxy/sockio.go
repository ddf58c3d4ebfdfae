package proxy

import "github.com/pgguard/pgguard/internal/wire"

// startSockIO moves the relay's reads and writes of plain sockets to
// wire.SockReader and wire.SockWriter. It runs before the relay starts, when the
// writers are empty; relay stops the readers when it ends.
func (s *Session) startSockIO() {
	if s.conns.Client == s.clientSock.Conn() {
		s.clientSock.Start()
		if w := wire.NewSockWriter(s.conns.Client); w != nil && s.conns.ToClient.Buffered() == 0 {
			s.conns.ToClient.Reset(w)
		}
	}
	s.serverSock.Start()
	if w := wire.NewSockWriter(s.conns.Server); w != nil && s.conns.ToServer.Buffered() == 0 {
		s.conns.ToServer.Reset(w)
	}
}

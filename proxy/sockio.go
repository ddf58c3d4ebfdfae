package proxy

import "github.com/pgguard/pgguard/internal/wire"

// startSockIO moves the relay's reads and writes of plain sockets to
// wire.SockReader and wire.SockWriter. It runs before the relay starts, when the
// writers are empty; relay stops the readers when it ends.
func (s *Session) startSockIO() {
	if s.client == s.clientSock.Conn() {
		s.clientSock.Start()
		if w := wire.NewSockWriter(s.client); w != nil && s.cw.Buffered() == 0 {
			s.cw.Reset(w)
		}
	}
	s.serverSock.Start()
	if w := wire.NewSockWriter(s.server); w != nil && s.sw.Buffered() == 0 {
		s.sw.Reset(w)
	}
}

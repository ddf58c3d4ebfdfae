package enforce

import (
	"bufio"
	"net"
	"sync"

	"github.com/pgguard/pgguard/internal/wire"
)

// Conns is a session's two connections with their buffered ends, as the
// relay and the machine share them. The relay owns it and hands the machine
// a pointer; both follow the same rules once the relay runs:
//
//   - FromClient is read by the client-to-server loop only. The machine
//     reads it from that loop (a statement's body, a look ahead in the
//     batch), and await's watcher peeks at it while that loop waits.
//   - FromServer is read by the server-to-client loop only; the machine's
//     treatment of a special sync point runs in that loop.
//   - ToServer is written under ToServerMu.
//   - ToClient is written under ToClientMu: by the server-to-client loop,
//     by the machine (a queued sync point being amended, a ReadyForQuery it
//     held back) and by a draining shutdown.
//
// The fields come in two halves, one per direction, on separate cache
// lines: each loop locks its half's mutex for every message.
type Conns struct {
	// Client to server. Client is the client connection (the TLS one
	// after an upgrade); the machine sets read deadlines on it to end a
	// watch of the client.
	Client     net.Conn
	FromClient *bufio.Reader
	ToServerMu sync.Mutex
	ToServer   *bufio.Writer

	_ cacheLinePad

	// Server to client.
	Server     net.Conn
	FromServer *bufio.Reader
	ToClientMu sync.Mutex
	ToClient   *bufio.Writer

	// acct records what is written to the server (accounting.go); set by
	// New, nil before.
	acct *accounting
}

// record notes a message written to the server; ToServerMu is held.
func (c *Conns) record(typ wire.ClientMsg) {
	if c.acct != nil {
		c.acct.sent(typ)
	}
}

// Forward streams one client message of type typ and body length n, whose
// header was read from FromClient, to the server, flushing when the client
// has nothing more buffered, so a pipeline goes out in one write.
func (c *Conns) Forward(typ wire.ClientMsg, n int) error {
	c.ToServerMu.Lock()
	defer c.ToServerMu.Unlock()
	c.record(typ)
	wire.WriteHeader(c.ToServer, typ, n)
	err := wire.CopyBody(c.ToServer, c.FromClient, n)
	if err == nil && c.FromClient.Buffered() == 0 {
		err = c.ToServer.Flush()
	}
	return err
}

// sendMessage writes one message to the server like Forward does: the
// flush waits until the client has nothing more buffered, so a Parse goes
// out together with the Bind, Execute and Sync behind it.
func (c *Conns) sendMessage(typ wire.ClientMsg, body []byte) error {
	c.ToServerMu.Lock()
	defer c.ToServerMu.Unlock()
	c.record(typ)
	wire.WriteMessage(c.ToServer, typ, body)
	if c.FromClient.Buffered() == 0 {
		return c.ToServer.Flush()
	}
	return nil
}

// send writes whole messages to the server and flushes.
func (c *Conns) send(msgs ...[]byte) error {
	c.ToServerMu.Lock()
	defer c.ToServerMu.Unlock()
	for _, m := range msgs {
		if c.acct != nil {
			c.acct.sentFrames(m)
		}
		c.ToServer.Write(m)
	}
	return c.ToServer.Flush()
}

// flushServer sends whatever the client-to-server loop has buffered. Every
// wait for the server's answer starts with it: the message waited for may
// still be in the buffer when the client pipelined several in one write.
func (c *Conns) flushServer() error {
	c.ToServerMu.Lock()
	defer c.ToServerMu.Unlock()
	return c.ToServer.Flush()
}

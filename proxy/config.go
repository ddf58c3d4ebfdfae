package proxy

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/pgguard/pgguard/internal/pgcatalog"
	"github.com/pgguard/pgguard/internal/wire"
	"github.com/pgguard/pgguard/policy"
	"github.com/pgguard/pgguard/proxy/enforce"

	"github.com/pgguard/pgguard/internal/observe"
)

// TLSMode is how pgguard talks TLS to the upstream server.
type TLSMode string

// Upstream TLS modes, named after libpq's sslmode values they behave like.
const (
	TLSDisable    TLSMode = "disable"
	TLSRequire    TLSMode = "require"     // encrypt, do not verify
	TLSVerifyFull TLSMode = "verify-full" // encrypt, verify chain and host name
)

// Target is one listen address in front of one upstream server.
type Target struct {
	// Name labels logs and metrics, e.g. "production".
	Name string
	// Listen is the TCP address clients connect to.
	Listen string
	// Upstream is host:port, or a unix-socket directory optionally followed
	// by :port (default 5432), e.g. /var/run/postgresql or /tmp:5433.
	Upstream string
	// UpstreamTLS says whether and how to encrypt the upstream connection;
	// UpstreamTLSConfig carries the CA and server name (required unless
	// disabled).
	UpstreamTLS       TLSMode
	UpstreamTLSConfig *tls.Config
	// Profile, when set, is the policy profile forced for this target.
	Profile string
	// Sizes, when set, answers the size questions of this target's
	// sessions with another database's sizes (sizes_file, sizes_from).
	Sizes pgcatalog.SizeSource
}

// Policy holds the engine that judges statements; Swap installs a reloaded
// one. The machine that applies it owns the type.
type Policy = enforce.Policy

// NewPolicy returns a Policy holding e.
func NewPolicy(e *policy.Engine) *Policy { return enforce.NewPolicy(e) }

// Config is everything a Server needs.
type Config struct {
	Targets []Target
	// ClientTLS, when set, lets clients upgrade with SSLRequest.
	ClientTLS *tls.Config
	// MaxConnections bounds concurrent client sessions over all targets;
	// zero means no bound.
	MaxConnections int
	// ConnectTimeout bounds dialing the upstream and its TLS handshake.
	ConnectTimeout time.Duration
	// StartupTimeout bounds a client's startup and authentication.
	StartupTimeout time.Duration
	Logger         *slog.Logger
	// Policy judges statements; nil makes pgguard a pure relay.
	Policy *Policy
	// Observer is told about what pgguard decided and did (metrics, audit).
	Observer observe.Observer
	// Limits bound what one session holds in memory; zero fields take
	// their defaults.
	Limits Limits
	// Relay is how plain traffic is relayed; empty means RelayLoop.
	Relay RelayMode
}

// RelayMode is how sessions are relayed.
type RelayMode string

const (
	// RelayLoop relays a session in one event loop (epoll, Linux only) for
	// as long as its traffic needs nothing but counting, and in two
	// goroutines from the first thing that needs more.
	RelayLoop RelayMode = "loop"
	// RelayGoroutines relays every session in two goroutines throughout.
	RelayGoroutines RelayMode = "goroutines"
)

// Limits bound the memory of one session. Memory follows the bytes that
// arrive, never a length declared ahead of them.
type Limits struct {
	// MaxStatementMessage bounds a Query or Parse message, which pgguard
	// reads whole to judge it. A longer one is refused with an ERROR
	// (54000) and the session goes on; its bytes are skipped, not kept.
	// PostgreSQL's own limit is 1 GB.
	MaxStatementMessage int
	// MaxHeldAnswer bounds the answer of a DDL statement held back while
	// it may still be retried after a lock_timeout failure; past it the
	// answer goes to the client and the statement is not retried.
	MaxHeldAnswer int
	// MaxStatementMemory bounds the bytes that all sessions together hold
	// for statement messages being read and judged (those over 64kB; each
	// session reuses one buffer of its own for smaller ones). Past it a
	// session stops reading its client until memory frees, for at most
	// StatementMemoryWait, and then gets PostgreSQL's ERROR 53200 (out of
	// memory) and goes on; so does a message that could never fit (reading
	// one takes about 1.5 times its length at its peak).
	MaxStatementMemory  int64
	StatementMemoryWait time.Duration
}

// Default limits. The statement memory suits a small container (512MB).
const (
	DefaultMaxStatementMessage = 256 << 20
	DefaultMaxHeldAnswer       = 1 << 20
	DefaultMaxStatementMemory  = 512 << 20
	DefaultStatementMemoryWait = 10 * time.Second
)

// UpstreamNetwork splits Target.Upstream into a network and address for
// net.Dial: tcp and host:port, or unix and the socket file in a directory.
func UpstreamNetwork(upstream string) (network, address string, err error) {
	if strings.HasPrefix(upstream, "/") {
		dir, port := upstream, "5432"
		if i := strings.LastIndex(upstream, ":"); i > 0 {
			dir, port = upstream[:i], upstream[i+1:]
		}
		if _, err := strconv.ParseUint(port, 10, 16); err != nil {
			return "", "", fmt.Errorf("invalid port in unix socket upstream %q", upstream)
		}
		return "unix", filepath.Join(dir, ".s.PGSQL."+port), nil
	}
	if _, _, err := net.SplitHostPort(upstream); err != nil {
		return "", "", fmt.Errorf("upstream %q is neither host:port nor a unix socket directory: %w", upstream, err)
	}
	return "tcp", upstream, nil
}

// Validate checks a Config and fills defaults.
func (c *Config) Validate() error {
	if len(c.Targets) == 0 {
		return fmt.Errorf("no targets configured")
	}
	seen := map[string]bool{}
	for i := range c.Targets {
		t := &c.Targets[i]
		if t.Name == "" {
			t.Name = "default"
			if len(c.Targets) > 1 {
				t.Name = t.Listen
			}
		}
		if seen[t.Listen] {
			return fmt.Errorf("target %s: listen address %s used twice", t.Name, t.Listen)
		}
		seen[t.Listen] = true
		if _, _, err := UpstreamNetwork(t.Upstream); err != nil {
			return fmt.Errorf("target %s: %w", t.Name, err)
		}
		switch t.UpstreamTLS {
		case "":
			t.UpstreamTLS = TLSDisable
		case TLSDisable:
		case TLSRequire, TLSVerifyFull:
			if t.UpstreamTLSConfig == nil {
				return fmt.Errorf("target %s: upstream TLS %s needs a TLS configuration", t.Name, t.UpstreamTLS)
			}
		default:
			return fmt.Errorf("target %s: unknown upstream TLS mode %q (want disable, require or verify-full)", t.Name, t.UpstreamTLS)
		}
	}
	if c.ConnectTimeout <= 0 {
		c.ConnectTimeout = 5 * time.Second
	}
	if c.StartupTimeout <= 0 {
		c.StartupTimeout = 60 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Limits.MaxStatementMessage <= 0 {
		c.Limits.MaxStatementMessage = DefaultMaxStatementMessage
	}
	c.Limits.MaxStatementMessage = min(c.Limits.MaxStatementMessage, wire.PQLargeMessageLimit-4)
	if c.Limits.MaxHeldAnswer <= 0 {
		c.Limits.MaxHeldAnswer = DefaultMaxHeldAnswer
	}
	if c.Limits.MaxStatementMemory <= 0 {
		c.Limits.MaxStatementMemory = DefaultMaxStatementMemory
	}
	if c.Limits.StatementMemoryWait <= 0 {
		c.Limits.StatementMemoryWait = DefaultStatementMemoryWait
	}
	return nil
}

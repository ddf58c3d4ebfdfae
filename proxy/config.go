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
}

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
	Observer Observer
}

// upstreamNetwork splits Target.Upstream into a network and address for net.Dial.
func upstreamNetwork(upstream string) (network, address string, err error) {
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
		if _, _, err := upstreamNetwork(t.Upstream); err != nil {
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
	return nil
}

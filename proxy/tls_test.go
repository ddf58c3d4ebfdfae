package proxy

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"io"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/pgguard/pgguard/internal/testkit/pgtest"
)

// clientTLS returns a server-side TLS config for the proxy and the CA file
// that clients verify it with.
func clientTLS(t *testing.T) (*tls.Config, string) {
	t.Helper()
	c, err := pgtest.WriteCerts(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	pair, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Config{Certificates: []tls.Certificate{pair}}, c.CAFile
}

func upstreamTLS(t *testing.T, mode TLSMode) func(*Config) {
	return func(c *Config) {
		pem, err := os.ReadFile(pg.CAFile)
		if err != nil {
			t.Fatal(err)
		}
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(pem)
		c.Targets[0].UpstreamTLS = mode
		c.Targets[0].UpstreamTLSConfig = &tls.Config{RootCAs: pool, ServerName: "127.0.0.1", InsecureSkipVerify: mode == TLSRequire}
	}
}

// serverSSL reports whether the server sees the session's backend on TLS.
func serverSSL(t *testing.T, conn *pgx.Conn) bool {
	var ssl bool
	if err := conn.QueryRow(context.Background(), "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()").Scan(&ssl); err != nil {
		t.Fatal(err)
	}
	return ssl
}

func TestClientTLS(t *testing.T) {
	cfg, ca := clientTLS(t)
	_, addr := startProxy(t, func(c *Config) { c.ClientTLS = cfg })
	for _, user := range []string{pgtest.MD5User, pgtest.SCRAMUser} {
		// channel_binding=prefer is what libpq and pgx do by default on TLS.
		url := strings.Replace(dsn(addr, user, "sslrootcert="+ca+"&channel_binding=prefer"), "sslmode=disable", "sslmode=verify-full", 1)
		conn := connect(t, url)
		if _, ok := conn.PgConn().Conn().(*tls.Conn); !ok {
			t.Fatalf("%s: client connection is not TLS", user)
		}
		if serverSSL(t, conn) {
			t.Fatalf("%s: upstream is TLS though disabled", user)
		}
	}
	// sslmode=disable still works when TLS is offered.
	connect(t, dsn(addr, pgtest.SCRAMUser, ""))
}

func TestNoClientTLSAnswersN(t *testing.T) {
	_, addr := startProxy(t, nil)
	url := strings.Replace(dsn(addr, pgtest.SuperUser, ""), "sslmode=disable", "sslmode=require", 1)
	if _, err := pgx.Connect(context.Background(), url); err == nil || !strings.Contains(err.Error(), "refused") && !strings.Contains(err.Error(), "SSL") {
		t.Fatalf("sslmode=require without client TLS: %v", err)
	}
	connect(t, strings.Replace(url, "sslmode=require", "sslmode=prefer", 1))
}

func TestUpstreamTLS(t *testing.T) {
	for _, mode := range []TLSMode{TLSRequire, TLSVerifyFull} {
		t.Run(string(mode), func(t *testing.T) {
			_, addr := startProxy(t, upstreamTLS(t, mode))
			// The server offers SCRAM-SHA-256-PLUS on TLS; pgguard removes it.
			for _, user := range []string{pgtest.SCRAMUser, pgtest.MD5User, pgtest.CleartextUser} {
				conn := connect(t, dsn(addr, user, ""))
				if !serverSSL(t, conn) {
					t.Fatalf("%s: upstream is not TLS", user)
				}
			}
		})
	}
	t.Run("verify-full wrong name", func(t *testing.T) {
		_, addr := startProxy(t, func(c *Config) {
			upstreamTLS(t, TLSVerifyFull)(c)
			c.Targets[0].UpstreamTLSConfig.ServerName = "db.example.com"
		})
		_, err := pgx.Connect(context.Background(), dsn(addr, pgtest.SuperUser, ""))
		if pgCode(err) != "08001" || !strings.Contains(err.Error(), "certificate") {
			t.Fatalf("err = %v, want 08001 about the certificate", err)
		}
	})
}

// Both sides on TLS and a client that supports channel binding: the server
// would refuse the login as a downgrade, so pgguard says why instead.
func TestChannelBindingBothSidesTLS(t *testing.T) {
	cfg, ca := clientTLS(t)
	_, addr := startProxy(t, func(c *Config) {
		upstreamTLS(t, TLSVerifyFull)(c)
		c.ClientTLS = cfg
	})
	base := strings.Replace(dsn(addr, pgtest.SCRAMUser, "sslrootcert="+ca), "sslmode=disable", "sslmode=verify-full", 1)
	_, err := pgx.Connect(context.Background(), base+"&channel_binding=prefer")
	if pgCode(err) != "28000" || !strings.Contains(err.Error(), "channel binding") {
		t.Fatalf("err = %v, want pgguard's 28000 about channel binding", err)
	}
	conn := connect(t, base+"&channel_binding=disable")
	if !serverSSL(t, conn) {
		t.Fatal("upstream not TLS")
	}
}

func TestPlaintextAfterSSLRequestRefused(t *testing.T) {
	cfg, _ := clientTLS(t)
	_, addr := startProxy(t, func(c *Config) { c.ClientTLS = cfg })
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var b []byte
	b = binary.BigEndian.AppendUint32(b, 8)
	b = binary.BigEndian.AppendUint32(b, codeSSLRequest)
	// A StartupMessage injected behind the SSLRequest, in the same packet.
	st := (&Startup{Version: 196608, Params: []Param{{"user", "postgres"}}}).encode()
	conn.Write(append(b, st...))
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	reply, _ := io.ReadAll(conn)
	if len(reply) == 0 || reply[0] != 'E' || !strings.Contains(string(reply), "unencrypted data after SSL request") {
		t.Fatalf("reply %q, want a FATAL about unencrypted data", reply)
	}
}

package pgcatalog

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// ConnSpec is how pgguard connects by itself, for its own read-only
// catalog queries (pgguard sizes export, a target's monitor: block): never
// on a client's behalf.
type ConnSpec struct {
	// Upstream is host:port, or a unix-socket directory optionally
	// followed by :port, as a target's upstream.
	Upstream string
	User     string
	Password string
	// PasswordFile, when set, is read again (its first line) at every
	// connection, so that a rotated password is used without a restart;
	// Password is used when it cannot be read.
	PasswordFile string
	Database     string
	// TLS is nil for no TLS, else the target's upstream TLS settings.
	TLS            *tls.Config
	ConnectTimeout time.Duration
}

// Connect opens a connection whose transactions are read-only and whose
// statements time out after a minute, named pgguard-sizes in
// pg_stat_activity.
func Connect(ctx context.Context, s ConnSpec) (*pgconn.PgConn, error) {
	cfg, err := pgconn.ParseConfig("")
	if err != nil {
		return nil, err
	}
	host, port := s.Upstream, "5432"
	if strings.HasPrefix(s.Upstream, "/") {
		if i := strings.LastIndexByte(s.Upstream, ':'); i > 0 {
			host, port = s.Upstream[:i], s.Upstream[i+1:]
		}
	} else if h, p, err := net.SplitHostPort(s.Upstream); err == nil {
		host, port = h, p
	} else {
		return nil, errors.New("upstream " + strconv.Quote(s.Upstream) + " is neither host:port nor a unix-socket directory")
	}
	n, err := strconv.ParseUint(port, 10, 16)
	if err != nil {
		return nil, errors.New("upstream " + strconv.Quote(s.Upstream) + " has no valid port")
	}
	cfg.Host, cfg.Port = host, uint16(n)
	cfg.User, cfg.Password, cfg.Database = s.User, s.Password, s.Database
	if s.PasswordFile != "" {
		if b, err := os.ReadFile(s.PasswordFile); err == nil {
			cfg.Password = strings.TrimRight(strings.SplitN(string(b), "\n", 2)[0], "\r")
		}
	}
	// Nothing from the environment's PG* variables decides how: the
	// settings are pgguard's (ParseConfig("") read them).
	cfg.TLSConfig, cfg.Fallbacks = s.TLS, nil
	cfg.ValidateConnect, cfg.AfterConnect = nil, nil
	if s.ConnectTimeout > 0 {
		cfg.ConnectTimeout = s.ConnectTimeout
	}
	cfg.RuntimeParams = map[string]string{
		"application_name":              "pgguard-sizes",
		"default_transaction_read_only": "on",
		"statement_timeout":             "60s",
	}
	return pgconn.ConnectConfig(ctx, cfg)
}

// ConnQuerier runs pgguard's own queries on a connection of its own
// (Connect), outside any transaction block.
type ConnQuerier struct {
	Ctx  context.Context
	Conn *pgconn.PgConn
	// Err is the last query's error, for the caller's message.
	Err error
}

var _ Querier = (*ConnQuerier)(nil)

func (q *ConnQuerier) Query(sql string) ([][]*string, bool) {
	results, err := q.Conn.Exec(q.Ctx, sql).ReadAll()
	q.Err = err
	if err != nil || len(results) == 0 {
		return nil, false
	}
	r := results[len(results)-1]
	out := make([][]*string, len(r.Rows))
	for i, row := range r.Rows {
		out[i] = make([]*string, len(row))
		for j, v := range row {
			if v != nil {
				s := string(v)
				out[i][j] = &s
			}
		}
	}
	return out, true
}

func (q *ConnQuerier) Idle() bool { return true }

// ServerVersion reads server_version_num from the server's version
// string (15.10 → 150010); 0 when it cannot.
func (q *ConnQuerier) ServerVersion() int {
	v := q.Conn.ParameterStatus("server_version")
	if i := strings.IndexAny(v, " ("); i >= 0 {
		v = v[:i]
	}
	parts := strings.SplitN(v, ".", 2)
	major, err := strconv.Atoi(parts[0])
	if err != nil {
		return 0
	}
	minor := 0
	if len(parts) == 2 {
		minor, _ = strconv.Atoi(parts[1])
	}
	return major*10000 + minor
}

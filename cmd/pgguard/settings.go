package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/pgguard/pgguard/internal/pgcatalog"
	"github.com/pgguard/pgguard/policy"
	"github.com/pgguard/pgguard/proxy"
)

// A setting of the serve command, which can come from a flag, from the
// environment (PGGUARD_<FLAG>, upper case, '-' as '_') or from the proxy:
// section of the rules file, in that order of precedence.
type setting struct {
	name  string // flag name
	def   string
	usage string
	file  func(*policy.ProxySettings) string // value from the rules file
	value string
	from  string // where value came from, for error messages
	// boolean makes the flag a switch: --pprof means --pprof=true.
	boolean bool
}

func (s *setting) env() string {
	return "PGGUARD_" + strings.ToUpper(strings.ReplaceAll(s.name, "-", "_"))
}

// serveSettings lists every setting of the serve command.
func serveSettings() []*setting {
	str := func(f func(*policy.ProxySettings) string) func(*policy.ProxySettings) string { return f }
	return []*setting{
		{name: "listen", def: "127.0.0.1:6432", usage: "address clients connect to", file: str(func(p *policy.ProxySettings) string { return p.Listen })},
		{name: "upstream", usage: "PostgreSQL server: host:port, or a unix-socket directory[:port]", file: str(func(p *policy.ProxySettings) string { return p.Upstream })},
		{name: "rules", usage: "policy file (rules.yaml); default: the built-in policy"},
		{name: "admin", def: "127.0.0.1:9187", usage: "address of the admin HTTP server (health, metrics); \"off\" disables it", file: str(func(p *policy.ProxySettings) string { return p.Admin })},
		{name: "max-connections", def: "0", usage: "maximum concurrent client connections over all targets (0: no limit)", file: func(p *policy.ProxySettings) string {
			if p.MaxConnections == nil {
				return ""
			}
			return strconv.Itoa(*p.MaxConnections)
		}},
		{name: "connect-timeout", def: "5s", usage: "time allowed to connect to the upstream server", file: str(func(p *policy.ProxySettings) string { return p.ConnectTimeout })},
		{name: "max-sigterm-delay", def: "30s", usage: "on SIGTERM, how long running sessions may go on before they are closed", file: str(func(p *policy.ProxySettings) string { return p.MaxSigtermDelay })},
		{name: "log-format", def: "text", usage: "log format: text or json", file: str(func(p *policy.ProxySettings) string { return p.LogFormat })},
		{name: "log-level", def: "info", usage: "log level: debug, info, warn or error", file: str(func(p *policy.ProxySettings) string { return p.LogLevel })},
		{name: "upstream-tls", def: "disable", usage: "TLS to the upstream server: disable, require or verify-full", file: str(func(p *policy.ProxySettings) string { return p.UpstreamTLS })},
		{name: "upstream-ca", usage: "CA certificate file (PEM) to verify the upstream server with", file: str(func(p *policy.ProxySettings) string { return p.UpstreamCA })},
		{name: "upstream-tls-server-name", usage: "server name to verify in the upstream certificate (default: the upstream host)", file: str(func(p *policy.ProxySettings) string { return p.UpstreamTLSServer })},
		{name: "client-tls-cert", usage: "certificate file (PEM) offered to clients that ask for TLS", file: str(func(p *policy.ProxySettings) string { return p.ClientTLSCert })},
		{name: "client-tls-key", usage: "private key file (PEM) for --client-tls-cert", file: str(func(p *policy.ProxySettings) string { return p.ClientTLSKey })},
		{name: "max-statement-message", def: "256MB", usage: "longest Query or Parse message pgguard reads whole to judge; a longer one gets ERROR 54000 and the session goes on", file: str(func(p *policy.ProxySettings) string { return p.MaxStatementMessage })},
		{name: "max-held-answer", def: "1MB", usage: "most of a DDL statement's answer held back while it may be retried after a lock_timeout failure; past it the statement is not retried", file: str(func(p *policy.ProxySettings) string { return p.MaxHeldAnswer })},
		{name: "max-statement-memory", def: "512MB", usage: "most memory all sessions together hold for statement messages pgguard reads whole; past it a session waits for memory (at most 10s), then gets ERROR 53200 and goes on", file: str(func(p *policy.ProxySettings) string { return p.MaxStatementMemory })},
		{name: "relay", def: "loop", usage: "how plain traffic is relayed: loop (one epoll loop for every session whose traffic needs nothing but counting, Linux) or goroutines (two per session throughout)", file: str(func(p *policy.ProxySettings) string { return p.Relay })},
		{name: "audit-log", usage: "file the audit log (one JSON line per DDL statement or non-allow decision) is appended to; default stderr, \"off\" disables it"},
		{name: "pprof", def: "false", boolean: true, usage: "serve /debug/pprof/ on the admin server"},
	}
}

// boolFlag is the flag.Value of a boolean setting: a string that the flag
// package lets stand alone (--pprof), validated later like the others.
type boolFlag struct{ v string }

func (b *boolFlag) String() string     { return b.v }
func (b *boolFlag) Set(v string) error { b.v = v; return nil }
func (b *boolFlag) IsBoolFlag() bool   { return true }

func lookup(settings []*setting, name string) *setting {
	for _, s := range settings {
		if s.name == name {
			return s
		}
	}
	panic("pgguard: no setting " + name)
}

// serveOptions are the validated settings.
type serveOptions struct {
	proxy           proxy.Config
	admin           string
	rulesPath       string
	maxSigtermDelay time.Duration
	logFormat       string
	logLevel        string
	auditLog        string // "" for stderr, "off", or a file
	pprof           bool
	// borrow lists the targets that judge with another database's sizes.
	borrow []borrowSpec
}

// borrowSpec is one target's sizes_file or sizes_from, validated.
type borrowSpec struct {
	target  string // the target that borrows
	file    string // sizes_file
	from    string // sizes_from: the source target
	conn    pgcatalog.ConnSpec
	refresh time.Duration
	// databases is sizes_databases: session database → the source's
	// database; nil when every session borrows the one source database
	// (conn's, or the file's).
	databases map[string]string
}

// resolve fills each setting by precedence flag > environment > file > default.
func resolve(fs *flag.FlagSet, settings []*setting, getenv func(string) string, file *policy.ProxySettings) {
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	for _, s := range settings {
		switch {
		case set[s.name]:
			s.value, s.from = fs.Lookup(s.name).Value.String(), "flag --"+s.name
		case getenv(s.env()) != "":
			s.value, s.from = getenv(s.env()), "environment variable "+s.env()
		case file != nil && s.file != nil && s.file(file) != "":
			s.value, s.from = s.file(file), "rules file setting proxy."+strings.ReplaceAll(s.name, "-", "_")
		default:
			s.value, s.from = s.def, "default of --"+s.name
		}
	}
}

// validate turns resolved settings into options, reporting every problem
// at once, each naming the setting and where its value came from.
func validate(settings []*setting, file *policy.ProxySettings) (*serveOptions, error) {
	get := func(name string) *setting { return lookup(settings, name) }
	var errs []error
	bad := func(name, format string, args ...any) {
		s := get(name)
		errs = append(errs, fmt.Errorf("%s (%s): %s", name, s.from, fmt.Sprintf(format, args...)))
	}
	duration := func(name string) time.Duration {
		d, err := time.ParseDuration(get(name).value)
		if err != nil || d < 0 {
			bad(name, "%q is not a duration such as 5s or 2m", get(name).value)
		}
		return d
	}
	o := &serveOptions{rulesPath: get("rules").value}
	o.proxy.ConnectTimeout = duration("connect-timeout")
	o.maxSigtermDelay = duration("max-sigterm-delay")
	if n, err := strconv.Atoi(get("max-connections").value); err != nil || n < 0 {
		bad("max-connections", "%q is not a non-negative integer", get("max-connections").value)
	} else {
		o.proxy.MaxConnections = n
	}
	size := func(name string) int {
		b, err := policy.ParseByteSize(get(name).value)
		if err != nil || b <= 0 || b > 1<<30 {
			bad(name, "%q is not a size between 1 byte and 1GB, such as 256MB", get(name).value)
		}
		return int(b)
	}
	o.proxy.Limits.MaxStatementMessage = size("max-statement-message")
	o.proxy.Limits.MaxHeldAnswer = size("max-held-answer")
	if b, err := policy.ParseByteSize(get("max-statement-memory").value); err != nil || b < 1<<20 {
		bad("max-statement-memory", "%q is not a size of at least 1MB, such as 256MB", get("max-statement-memory").value)
	} else {
		o.proxy.Limits.MaxStatementMemory = int64(b)
	}
	switch r := proxy.RelayMode(get("relay").value); r {
	case proxy.RelayLoop, proxy.RelayGoroutines:
		o.proxy.Relay = r
	default:
		bad("relay", "%q is neither loop nor goroutines", r)
	}
	o.logFormat = get("log-format").value
	if o.logFormat != "text" && o.logFormat != "json" {
		bad("log-format", "%q is neither text nor json", o.logFormat)
	}
	o.logLevel = get("log-level").value
	switch o.logLevel {
	case "debug", "info", "warn", "error":
	default:
		bad("log-level", "%q is not one of debug, info, warn, error", o.logLevel)
	}
	o.admin = get("admin").value
	if o.admin != "off" && o.admin != "" {
		if _, _, err := net.SplitHostPort(o.admin); err != nil {
			bad("admin", "%q is not host:port (or off)", o.admin)
		}
	}
	o.auditLog = get("audit-log").value
	if p, err := strconv.ParseBool(get("pprof").value); err != nil {
		bad("pprof", "%q is neither true nor false", get("pprof").value)
	} else {
		o.pprof = p
	}
	// TLS towards clients.
	cert, key := get("client-tls-cert").value, get("client-tls-key").value
	switch {
	case cert != "" && key != "":
		c, err := tls.LoadX509KeyPair(cert, key)
		if err != nil {
			bad("client-tls-cert", "loading certificate and key: %v", err)
		} else {
			o.proxy.ClientTLS = &tls.Config{Certificates: []tls.Certificate{c}, MinVersion: tls.VersionTLS12}
		}
	case cert != "" || key != "":
		bad("client-tls-cert", "--client-tls-cert and --client-tls-key must be given together")
	}
	// The default target, then the file's extra targets.
	defaults := targetSpec{
		listen: get("listen").value, upstream: get("upstream").value,
		tls: get("upstream-tls").value, ca: get("upstream-ca").value, serverName: get("upstream-tls-server-name").value,
	}
	var specs []targetSpec
	if defaults.upstream != "" {
		defaults.name = "default"
		specs = append(specs, defaults)
	}
	if file != nil {
		for i, ft := range file.Targets {
			sp := targetSpec{name: ft.Name, listen: ft.Listen, upstream: ft.Upstream, tls: ft.UpstreamTLS, ca: ft.UpstreamCA, serverName: ft.UpstreamTLSServer, profile: ft.Profile,
				where: fmt.Sprintf("rules file setting proxy.targets[%d]", i), file: ft}
			if sp.name == "" {
				sp.name = fmt.Sprintf("target%d", i+1)
			}
			if sp.tls == "" {
				sp.tls, sp.ca, sp.serverName = defaults.tls, defaults.ca, defaults.serverName
			}
			specs = append(specs, sp)
		}
	}
	if len(specs) == 0 {
		bad("upstream", "no upstream server given: pass --upstream host:port (or set PGGUARD_UPSTREAM, or proxy.upstream in the rules file)")
	}
	var built []targetSpec
	for _, sp := range specs {
		t, err := sp.target()
		var fe *fieldError
		switch {
		case err == nil:
		case sp.where == "" && errors.As(err, &fe):
			bad(fe.field, "%s", fe.msg)
			continue
		default:
			errs = append(errs, fmt.Errorf("%s: %w", sp.where, err))
			continue
		}
		o.proxy.Targets = append(o.proxy.Targets, t)
		built = append(built, sp)
	}
	errs = append(errs, o.validateBorrowing(built)...)
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return o, nil
}

// fieldError is a problem with one field of a target.
type fieldError struct{ field, msg string }

func (e *fieldError) Error() string { return e.field + ": " + e.msg }

func fieldErr(field, format string, args ...any) error {
	return &fieldError{field, fmt.Sprintf(format, args...)}
}

// targetSpec is a target before validation.
type targetSpec struct {
	name, listen, upstream, tls, ca, serverName, profile string
	where                                                string
	// file is the target's entry of proxy.targets (sizes and monitor).
	file policy.TargetSettings
}

// defaultSizesRefresh is how often a sizes_from source is read again.
const defaultSizesRefresh = 5 * time.Minute

// validateBorrowing checks the targets' sizes_file and sizes_from (and the
// monitor: blocks these name) and fills o.borrow.
func (o *serveOptions) validateBorrowing(specs []targetSpec) []error {
	var errs []error
	byName := map[string]int{}
	for i, sp := range specs {
		byName[sp.name] = i
	}
	for i, sp := range specs {
		ft := sp.file
		bad := func(field, format string, args ...any) {
			errs = append(errs, fmt.Errorf("%s.%s: %s", sp.where, field, fmt.Sprintf(format, args...)))
		}
		if ft.Monitor != nil && ft.Monitor.PasswordEnv != "" && ft.Monitor.PasswordFile != "" {
			bad("monitor", "give password_env or password_file, not both")
		}
		if ft.SizesFile == "" && ft.SizesFrom == "" {
			if ft.SizesRefresh != "" {
				bad("sizes_refresh", "set without sizes_from")
			}
			if ft.SizesDatabases != nil {
				bad("sizes_databases", "set without sizes_from or sizes_file")
			}
			continue
		}
		b := borrowSpec{target: sp.name, refresh: defaultSizesRefresh}
		if ft.SizesDatabases != nil {
			if len(ft.SizesDatabases) == 0 {
				bad("sizes_databases", "empty: name each session database and the source's database it borrows from (billing_uat: billing), or leave it out")
				continue
			}
			okMap := true
			for from, to := range ft.SizesDatabases {
				if from == "" || to == "" {
					bad("sizes_databases", "an entry with an empty database name")
					okMap = false
				}
			}
			if !okMap {
				continue
			}
			b.databases = ft.SizesDatabases
		}
		switch {
		case ft.SizesFile != "" && ft.SizesFrom != "":
			bad("sizes_file", "give sizes_file or sizes_from, not both")
			continue
		case ft.SizesFile != "":
			f, err := pgcatalog.LoadSizes(ft.SizesFile)
			if err != nil {
				bad("sizes_file", "%v", err)
				continue
			}
			// A file is one database's: sizes_databases can only say which
			// session databases borrow it.
			wrong := ""
			for from, to := range b.databases {
				if to != f.File.Database {
					wrong = from + ": " + to
				}
			}
			if wrong != "" {
				bad("sizes_databases", "%s: the file holds the sizes of database %s only (sizes_from borrows several databases of one source)", wrong, f.File.Database)
				continue
			}
			b.file = ft.SizesFile
		default:
			j, ok := byName[ft.SizesFrom]
			switch {
			case !ok:
				bad("sizes_from", "no target named %q", ft.SizesFrom)
				continue
			case j == i:
				bad("sizes_from", "a target cannot borrow its own sizes")
				continue
			}
			src := specs[j]
			m := src.file.Monitor
			if m == nil || m.User == "" {
				bad("sizes_from", "target %s has no monitor: block with a user: pgguard reads its sizes over a connection of its own (monitor: {user, database, password_env or password_file})", src.name)
				continue
			}
			password := ""
			switch {
			case m.PasswordFile != "":
				p, err := readSecret(m.PasswordFile, "")
				if err != nil {
					errs = append(errs, fmt.Errorf("%s.monitor.password_file: %v", src.where, err))
					continue
				}
				password = p
			case m.PasswordEnv != "":
				password = os.Getenv(m.PasswordEnv)
				if password == "" {
					errs = append(errs, fmt.Errorf("%s.monitor.password_env: the environment variable %s is empty", src.where, m.PasswordEnv))
					continue
				}
			}
			db := m.Database
			if db == "" {
				db = m.User
			}
			t, _ := src.target()
			b.from = src.name
			b.conn = pgcatalog.ConnSpec{Upstream: src.upstream, User: m.User, Password: password, PasswordFile: m.PasswordFile, Database: db, TLS: t.UpstreamTLSConfig, ConnectTimeout: o.proxy.ConnectTimeout}
			if ft.SizesRefresh != "" {
				d, err := time.ParseDuration(ft.SizesRefresh)
				if err != nil || d < 10*time.Second {
					bad("sizes_refresh", "%q is not a duration of at least 10s, such as 5m", ft.SizesRefresh)
					continue
				}
				b.refresh = d
			}
		}
		o.borrow = append(o.borrow, b)
	}
	return errs
}

func (sp targetSpec) target() (proxy.Target, error) {
	t := proxy.Target{Name: sp.name, Listen: sp.listen, Upstream: sp.upstream, Profile: sp.profile}
	if _, _, err := net.SplitHostPort(sp.listen); err != nil {
		return t, fieldErr("listen", "%q is not host:port", sp.listen)
	}
	if sp.upstream == "" {
		return t, fieldErr("upstream", "missing for target %s", sp.name)
	}
	if !strings.HasPrefix(sp.upstream, "/") {
		if _, _, err := net.SplitHostPort(sp.upstream); err != nil {
			return t, fieldErr("upstream", "%q is neither host:port nor a unix-socket directory", redactUpstream(sp.upstream))
		}
	}
	t.UpstreamTLS = proxy.TLSMode(sp.tls)
	switch t.UpstreamTLS {
	case proxy.TLSDisable:
	case proxy.TLSRequire, proxy.TLSVerifyFull:
		cfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: sp.serverName}
		if cfg.ServerName == "" {
			host, _, _ := net.SplitHostPort(sp.upstream)
			cfg.ServerName = host
		}
		if sp.ca != "" {
			pem, err := os.ReadFile(sp.ca)
			if err != nil {
				return t, fieldErr("upstream-ca", "%v", err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return t, fieldErr("upstream-ca", "%s holds no PEM certificate", sp.ca)
			}
			cfg.RootCAs = pool
		}
		if t.UpstreamTLS == proxy.TLSRequire {
			// Like libpq's sslmode=require: encrypted, not verified.
			cfg.InsecureSkipVerify = true
		}
		t.UpstreamTLSConfig = cfg
	default:
		return t, fieldErr("upstream-tls", "%q is not one of disable, require, verify-full", sp.tls)
	}
	return t, nil
}

// redactUpstream hides the password of an upstream given, by mistake, as
// a connection URI (postgres://user:password@host/db) or as libpq
// keywords (host=... password=...), so that the error refusing it does
// not print the password into a terminal or a log.
func redactUpstream(s string) string {
	if u, err := url.Parse(s); err == nil && u.User != nil {
		if _, has := u.User.Password(); has {
			return u.Redacted()
		}
	}
	if i := strings.Index(strings.ToLower(s), "password"); i >= 0 {
		return s[:i] + "password=xxxxx"
	}
	return s
}

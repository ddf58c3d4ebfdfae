package policy

// ProxySettings is the `proxy:` section of rules.yaml: the serve command's
// settings, so that one file can configure a whole deployment. Flags and
// PGGUARD_* environment variables take precedence over it. The policy package
// only decodes these; cmd/pgguard validates them (addresses, durations, files)
// together with the flags, so every error names the setting it comes from.
type ProxySettings struct {
	Listen          string `yaml:"listen"`
	Upstream        string `yaml:"upstream"`
	Admin           string `yaml:"admin"`
	MaxConnections  *int   `yaml:"max_connections"`
	ConnectTimeout  string `yaml:"connect_timeout"`
	MaxSigtermDelay string `yaml:"max_sigterm_delay"`
	LogFormat       string `yaml:"log_format"`
	LogLevel        string `yaml:"log_level"`
	// UpstreamTLS is disable, require or verify-full.
	UpstreamTLS       string `yaml:"upstream_tls"`
	UpstreamCA        string `yaml:"upstream_ca"`
	UpstreamTLSServer string `yaml:"upstream_tls_server_name"`
	// ClientTLSCert and ClientTLSKey turn on TLS towards clients.
	ClientTLSCert string `yaml:"client_tls_cert"`
	ClientTLSKey  string `yaml:"client_tls_key"`
	// MaxStatementMessage and MaxHeldAnswer bound a session's memory
	// (sizes such as 256MB).
	MaxStatementMessage string `yaml:"max_statement_message"`
	MaxHeldAnswer       string `yaml:"max_held_answer"`
	// MaxStatementMemory bounds what all sessions together hold for
	// statement messages being read.
	MaxStatementMemory string `yaml:"max_statement_memory"`
	// Relay is loop (the default) or goroutines.
	Relay string `yaml:"relay"`
	// Targets adds more listen→upstream pairs served by the same process,
	// e.g. one port per environment. Unset fields inherit from the section.
	Targets []TargetSettings `yaml:"targets"`
}

// TargetSettings is one entry of proxy.targets.
type TargetSettings struct {
	Name              string `yaml:"name"`
	Listen            string `yaml:"listen"`
	Upstream          string `yaml:"upstream"`
	UpstreamTLS       string `yaml:"upstream_tls"`
	UpstreamCA        string `yaml:"upstream_ca"`
	UpstreamTLSServer string `yaml:"upstream_tls_server_name"`
	// Profile forces a policy profile for every session of this target.
	Profile string `yaml:"profile"`
	// SizesFile and SizesFrom make the target judge with another
	// database's table sizes: those of a file pgguard sizes export wrote
	// (re-read when it changes), or those of another target's live
	// catalog, read through that target's monitor: connection every
	// SizesRefresh (default 5m). At most one of the two.
	SizesFile    string `yaml:"sizes_file"`
	SizesFrom    string `yaml:"sizes_from"`
	SizesRefresh string `yaml:"sizes_refresh"`
	// SizesDatabases maps the target's session databases to the source's
	// databases whose sizes they borrow (billing_uat: billing), for a
	// target serving several databases. When set, a session of a database
	// it does not name is judged with its own sizes; when unset, every
	// session borrows the sizes of the monitor's database (or the file's).
	SizesDatabases map[string]string `yaml:"sizes_databases"`
	// Monitor is the connection pgguard opens by itself to this target's
	// upstream for its own read-only catalog queries, when another
	// target's sizes_from names this one.
	Monitor *MonitorSettings `yaml:"monitor"`
}

// MonitorSettings is a target's monitor: block: a role and database for
// pgguard's own catalog queries (no privilege beyond reading pg_catalog
// is needed), with its password in an environment variable or a file.
// TLS is the target's upstream TLS.
type MonitorSettings struct {
	User         string `yaml:"user"`
	Database     string `yaml:"database"`
	PasswordEnv  string `yaml:"password_env"`
	PasswordFile string `yaml:"password_file"`
}

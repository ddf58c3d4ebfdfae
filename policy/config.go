package policy

import (
	"errors"
	"fmt"
	"github.com/pgguard/pgguard/policy/sqltext"
	"os"
	"time"

	"github.com/pgguard/pgguard"
)

// Config is a decoded, validated rules.yaml.
type Config struct {
	// Mode is enforce, warn or audit; see Mode.
	Mode Mode `yaml:"mode"`
	// AssumePGVersion is the major version assumed when the server's is
	// unknown (lint, or before ParameterStatus arrives).
	AssumePGVersion int `yaml:"assume_pg_version"`
	// LockTimeout is the lock_timeout the proxy gives the statements of
	// LockTimeoutScope.
	LockTimeout Duration `yaml:"lock_timeout"`
	// MaxLockTimeout is the most a client may raise lock_timeout to.
	MaxLockTimeout Duration `yaml:"max_lock_timeout"`
	// LockTimeoutScope is which statements get LockTimeout: those that
	// block writes (ddl, the default) or every statement of every session.
	LockTimeoutScope LockTimeoutScope `yaml:"lock_timeout_scope"`
	// ConcurrentStatementTimeout is the lock_timeout the proxy sets while a
	// CONCURRENTLY statement runs; 0 means none.
	ConcurrentStatementTimeout Duration `yaml:"concurrent_statement_timeout"`
	// LockQueue says how the proxy keeps a statement that would queue
	// behind a long holder of a conflicting lock out of the lock queue.
	LockQueue LockQueue `yaml:"lock_queue"`
	// LockTimeoutRetries says how the proxy retries an autocommit statement
	// that failed with lock_not_available (55P03).
	LockTimeoutRetries Retries `yaml:"lock_timeout_retries"`
	// SizeThresholds say when a table is small enough for size rules not
	// to apply.
	SizeThresholds SizeThresholds `yaml:"size_thresholds"`
	// LargeDML configures rule large-dml.
	LargeDML LargeDML `yaml:"large_dml"`
	// OnParseError is reject, warn or allow (LevelOff) for DDL that does
	// not parse.
	OnParseError Fallback `yaml:"on_parse_error"`
	// OnDynamicSQL is reject, warn or allow (LevelOff) for EXECUTE of a
	// non-literal string in DO blocks and functions.
	OnDynamicSQL Fallback `yaml:"on_dynamic_sql"`
	// MaxStatementBytes is the longest statement the engine parses.
	MaxStatementBytes ByteSize `yaml:"max_statement_bytes"`
	// Annotations configure the pgguard:allow escape hatch.
	Annotations Annotations `yaml:"annotations"`
	// Rules overrides rule levels by id; rules not named keep their
	// default level.
	Rules map[string]Level `yaml:"rules"`
	// Profiles are tried in order; the first that matches a session
	// overrides Mode and Rules for it.
	Profiles []Profile `yaml:"profiles"`
	// Proxy is the serve command's section, decoded but not validated here.
	Proxy ProxySettings `yaml:"proxy"`
}

// LockQueue configures the look at the lock queue before a statement that
// takes an ACCESS EXCLUSIVE lock on a table.
type LockQueue struct {
	// Deadline is how long the statement may wait outside the queue for
	// a session that holds a lock on its table since longer than
	// Threshold; past it the statement is refused, naming that session.
	// 0 turns the look off.
	Deadline Duration `yaml:"deadline"`
	// Threshold is how long a holder's transaction must have run for the
	// statement to wait for it outside the queue; younger ones are
	// ordinary traffic, which lock_timeout covers.
	Threshold Duration `yaml:"threshold"`
}

// Retries configure lock_timeout retries.
type Retries struct {
	// Attempts is the number of tries in all; 1 means no retry.
	Attempts       int      `yaml:"attempts"`
	InitialBackoff Duration `yaml:"initial_backoff"`
	MaxBackoff     Duration `yaml:"max_backoff"`
}

// SizeThresholds: a table is small when its row estimate is below Rows
// and its total size is below Bytes; both must hold.
type SizeThresholds struct {
	Rows  int64    `yaml:"rows"`
	Bytes ByteSize `yaml:"bytes"`
}

// LargeDML configures rule large-dml.
type LargeDML struct {
	// MaxRows is the most rows one UPDATE or DELETE may change, by the
	// planner's estimate.
	MaxRows int64 `yaml:"max_rows"`
}

// Annotations configure the escape hatch.
type Annotations struct {
	// AllowedRoles are the roles (glob patterns) whose pgguard:allow
	// annotations are honoured.
	AllowedRoles []string `yaml:"allowed_roles"`
}

// Profile overrides the mode and rule levels for matching sessions.
type Profile struct {
	Name  string       `yaml:"name"`
	Match ProfileMatch `yaml:"match"`
	// Mode overrides the global mode when set.
	Mode *Mode `yaml:"mode"`
	// Rules override the global rule levels.
	Rules map[string]Level `yaml:"rules"`
	// Migration marks the sessions the profile matches as a migration's
	// (Context.Migration), whatever the proxy recognises of them.
	Migration bool `yaml:"migration"`
}

// ProfileMatch selects sessions by glob patterns (* and ?). Every list
// that is not empty must have a matching pattern; an empty match matches
// every session.
type ProfileMatch struct {
	Database        []string `yaml:"database"`
	User            []string `yaml:"user"`
	ApplicationName []string `yaml:"application_name"`
}

// defaultConfig is the policy when rules.yaml says nothing; the embedded
// rules.yaml spells out the same values (a test checks it).
func defaultConfig() *Config {
	return &Config{
		Mode:                       ModeEnforce,
		AssumePGVersion:            15,
		LockTimeout:                Duration(3 * time.Second),
		MaxLockTimeout:             Duration(10 * time.Second),
		ConcurrentStatementTimeout: 0,
		LockQueue:                  LockQueue{Deadline: Duration(time.Minute), Threshold: Duration(time.Second)},
		LockTimeoutRetries: Retries{
			Attempts:       3,
			InitialBackoff: Duration(200 * time.Millisecond),
			MaxBackoff:     Duration(5 * time.Second),
		},
		SizeThresholds:    SizeThresholds{Rows: 10000, Bytes: 10 << 20},
		LargeDML:          LargeDML{MaxRows: 100_000},
		OnParseError:      Fallback(LevelReject),
		OnDynamicSQL:      Fallback(LevelReject),
		MaxStatementBytes: sqltext.DefaultMaxStatementBytes,
		Rules:             map[string]Level{},
	}
}

// ParseConfig decodes and validates a rules file. filename is used in error
// messages only. Every problem is reported, each as file:line:column.
func ParseConfig(data []byte, filename string) (*Config, error) {
	cfg := defaultConfig()
	d := &decoder{file: filename}
	d.decodeDocument(data, cfg)
	if d.values != nil {
		d.validate(cfg)
	}
	if len(d.errs) > 0 {
		return nil, &ConfigError{Errors: d.errs}
	}
	if cfg.Rules == nil {
		cfg.Rules = map[string]Level{}
	}
	return cfg, nil
}

// LoadConfig reads and parses a rules file.
func LoadConfig(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading rules file: %w", err)
	}
	return ParseConfig(data, path)
}

// DefaultConfig parses the rules.yaml embedded in the binary.
func DefaultConfig() (*Config, error) {
	return ParseConfig(pgguard.DefaultRules, "rules.yaml (built in)")
}

// ConfigError lists every problem found in a rules file.
type ConfigError struct {
	Errors []error
}

func (e *ConfigError) Error() string {
	return errors.Join(e.Errors...).Error()
}

// Unwrap returns the individual errors.
func (e *ConfigError) Unwrap() []error { return e.Errors }

// RuleLevel returns the level of rule id in the global rules (not
// profiles): the configured one, or the rule's default.
func (c *Config) RuleLevel(id string) Level {
	if l, ok := c.Rules[id]; ok {
		return l
	}
	if r, ok := LookupRule(id); ok {
		return r.Default
	}
	return LevelOff
}

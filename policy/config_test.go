package policy

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/pgguard/pgguard"
)

func TestBadConfigs(t *testing.T) {
	files, err := filepath.Glob("testdata/config/*.bad.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no bad configs: %v", err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			t.Parallel()
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			wantData, err := os.ReadFile(strings.TrimSuffix(f, ".yaml") + ".txt")
			if err != nil {
				t.Fatalf("each bad config needs its expected errors in a .txt file: %v", err)
			}
			want := strings.ReplaceAll(strings.TrimSpace(string(wantData)), "{{RULES}}", ruleIDs())
			_, err = ParseConfig(data, filepath.Base(f))
			if err == nil {
				t.Fatal("ParseConfig succeeded")
			}
			if got := err.Error(); got != want {
				t.Errorf("errors:\n%s\nwant:\n%s", got, want)
			}
		})
	}
}

func TestGoodConfigs(t *testing.T) {
	cfg, err := LoadConfig("testdata/config/full.good.yaml")
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"mode", cfg.Mode, ModeWarn},
		{"assume_pg_version", cfg.AssumePGVersion, 16},
		{"lock_timeout", cfg.LockTimeout, Duration(2 * time.Second)},
		{"concurrent_statement_timeout", cfg.ConcurrentStatementTimeout, Duration(time.Hour)},
		{"retries", cfg.LockTimeoutRetries, Retries{5, Duration(100 * time.Millisecond), Duration(2 * time.Second)}},
		{"size", cfg.SizeThresholds, SizeThresholds{50000, 64 << 20}},
		{"on_parse_error", cfg.OnParseError, Fallback(LevelOff)},
		{"on_dynamic_sql", cfg.OnDynamicSQL, Fallback(LevelWarn)},
		{"max_statement_bytes", cfg.MaxStatementBytes, ByteSize(256 << 10)},
		{"allowed_roles", cfg.Annotations.AllowedRoles, []string{"migrator", "admin_*"}},
		{"rules", cfg.Rules, map[string]Level{"create-index": LevelReject, "rename-column": LevelWarn}},
		{"profiles", len(cfg.Profiles), 2},
		{"profile mode", *cfg.Profiles[1].Mode, ModeAudit},
		{"profile rules", cfg.Profiles[0].Rules, map[string]Level{"rename-column": LevelReject}},
		{"proxy listen", cfg.Proxy.Listen, "127.0.0.1:6432"},
		{"proxy max_connections", *cfg.Proxy.MaxConnections, 200},
		{"proxy target profile", cfg.Proxy.Targets[0].Profile, "uat"},
		{"rule level", cfg.RuleLevel("set-not-null"), LevelReject},
	}
	for _, c := range checks {
		if !reflect.DeepEqual(c.got, c.want) {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
	empty, err := LoadConfig("testdata/config/empty.good.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(empty, defaultConfig()) {
		t.Errorf("an empty file is not the defaults: %+v", empty)
	}
}

// TestEmbeddedRulesAreTheDefaults keeps rules.yaml, its documentation and
// the Go defaults in step: every rule is listed with its default level.
func TestEmbeddedRulesAreTheDefaults(t *testing.T) {
	cfg, err := DefaultConfig()
	if err != nil {
		t.Fatal(err)
	}
	want := defaultConfig()
	for _, r := range Rules() {
		l, ok := cfg.Rules[r.ID]
		if !ok {
			t.Errorf("rules.yaml does not list rule %s", r.ID)
		} else if l != r.Default {
			t.Errorf("rules.yaml sets %s to %s, its default is %s", r.ID, l, r.Default)
		}
	}
	cfg.Rules, want.Rules = nil, nil
	cfg.Profiles, want.Profiles = nil, nil
	if !reflect.DeepEqual(cfg, want) {
		t.Errorf("rules.yaml differs from the built-in defaults:\n got %+v\nwant %+v", cfg, want)
	}
	if len(pgguard.DefaultRules) == 0 {
		t.Error("rules.yaml is not embedded")
	}
}

func TestParseLockTimeout(t *testing.T) {
	for _, c := range []struct {
		in   string
		want time.Duration
		err  bool
	}{
		{"0", 0, false}, {"500", 500 * time.Millisecond, false}, {"3s", 3 * time.Second, false},
		{"1min", time.Minute, false}, {"2 h", 2 * time.Hour, false}, {"1.5s", 1500 * time.Millisecond, false},
		{"10 parsecs", 0, true}, {"", 0, true},
	} {
		got, err := ParseLockTimeout(c.in)
		if (err != nil) != c.err || got != c.want {
			t.Errorf("ParseLockTimeout(%q) = %v, %v", c.in, got, err)
		}
	}
}

package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/pgguard/pgguard/policy"
)

func TestSettingsPrecedence(t *testing.T) {
	file := &policy.ProxySettings{Listen: "127.0.0.1:7000", Upstream: "db:5432", ConnectTimeout: "9s", LogFormat: "json"}
	env := map[string]string{"PGGUARD_UPSTREAM": "envdb:5432", "PGGUARD_CONNECT_TIMEOUT": "8s"}
	fs, settings := newServeFlags(&bytes.Buffer{})
	if err := fs.Parse([]string{"--connect-timeout", "7s"}); err != nil {
		t.Fatal(err)
	}
	resolve(fs, settings, func(k string) string { return env[k] }, file)
	o, err := validate(settings, file)
	if err != nil {
		t.Fatal(err)
	}
	if o.proxy.ConnectTimeout.String() != "7s" {
		t.Errorf("connect timeout %v: the flag must win", o.proxy.ConnectTimeout)
	}
	if o.proxy.Targets[0].Upstream != "envdb:5432" {
		t.Errorf("upstream %s: the environment must beat the file", o.proxy.Targets[0].Upstream)
	}
	if o.proxy.Targets[0].Listen != "127.0.0.1:7000" || o.logFormat != "json" {
		t.Errorf("listen %s, log format %s: the file must beat defaults", o.proxy.Targets[0].Listen, o.logFormat)
	}
	if o.admin != "127.0.0.1:9187" {
		t.Errorf("admin default %q", o.admin)
	}
}

func TestSettingsErrorsNameTheSetting(t *testing.T) {
	file := &policy.ProxySettings{MaxSigtermDelay: "soon", Targets: []policy.TargetSettings{{Name: "uat", Listen: "127.0.0.1:6543"}}}
	env := map[string]string{"PGGUARD_LOG_LEVEL": "loud"}
	var stderr bytes.Buffer
	code := serveWith(t, []string{"--upstream", "127.0.0.1:5432", "--max-connections", "-1", "--client-tls-cert", "x.pem"}, env, file, &stderr)
	if code != 2 {
		t.Fatalf("exit %d, want 2", code)
	}
	for _, want := range []string{
		`max-connections (flag --max-connections): "-1" is not a non-negative integer`,
		`max-sigterm-delay (rules file setting proxy.max_sigterm_delay): "soon" is not a duration`,
		`log-level (environment variable PGGUARD_LOG_LEVEL): "loud" is not one of`,
		`client-tls-cert (flag --client-tls-cert): --client-tls-cert and --client-tls-key must be given together`,
		`rules file setting proxy.targets[0]: upstream: missing for target uat`,
	} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr.String())
		}
	}
}

// serveWith runs the settings part of serve with a given file section.
func serveWith(t *testing.T, args []string, env map[string]string, file *policy.ProxySettings, stderr *bytes.Buffer) int {
	t.Helper()
	fs, settings := newServeFlags(stderr)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	resolve(fs, settings, func(k string) string { return env[k] }, file)
	if _, err := validate(settings, file); err != nil {
		stderr.WriteString(err.Error())
		return 2
	}
	return 0
}

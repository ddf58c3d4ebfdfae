package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestRedteamUpstreamPasswordNotEchoed: libpq's tools take a connection
// URI where pgguard wants host:port, and pgguard sizes export reads
// PGUSER, PGDATABASE and PGPASSWORD as they do, so a URI with its
// password is a likely mistake for --upstream, PGGUARD_UPSTREAM or a
// target's upstream. The error that refuses it quotes the setting whole,
// password included, into the terminal, the CI job's log or serve's log.
func TestRedteamUpstreamPasswordNotEchoed(t *testing.T) {
	const secret = "hunter2-Secret"
	uri := "postgres://pgguard_monitor:" + secret + "@db.internal:5432/ledger"
	code, out, errOut := runCmd(t, "", "sizes", "export", "--upstream", uri, "--output", filepath.Join(t.TempDir(), "s.json"))
	if code == 0 || strings.Contains(out+errOut, secret) {
		t.Errorf("sizes export --upstream URI: exit %d, the password is in its output: %s%s", code, out, errOut)
	}
	code, out, errOut = runCmd(t, "", "sizes", "export", "--upstream", "host=db.internal password="+secret, "--output", filepath.Join(t.TempDir(), "s.json"))
	if code == 0 || strings.Contains(out+errOut, secret) {
		t.Errorf("sizes export --upstream keywords: exit %d, the password is in its output: %s%s", code, out, errOut)
	}
	rules := filepath.Join(t.TempDir(), "rules.yaml")
	body := "proxy:\n  targets:\n    - {name: production, listen: 127.0.0.1:7001, upstream: \"" + uri + "\"}\n"
	if err := os.WriteFile(rules, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errOut = runCmd(t, "", "check-config", rules)
	if code == 0 || strings.Contains(out+errOut, secret) {
		t.Errorf("check-config, a target's upstream URI: exit %d, the password is in its output: %s%s", code, out, errOut)
	}
}

package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCheckConfig(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte(text), 0o644)
		return p
	}
	cases := []struct {
		name, file string
		code       int
		want       []string
	}{
		{"built-in", "", 0, []string{"built-in rules.yaml: ok"}},
		{"good", write("good.yaml", "mode: warn\nproxy:\n  upstream: db:5432\n"), 0, []string{"good.yaml: ok", "mode warn"}},
		{"bad policy", write("bad.yaml", "mode: loud\nrules:\n  no-such-rule: reject\nextra: 1\n"), 2, []string{"bad.yaml:1:", "bad.yaml:3:", "bad.yaml:4:"}},
		{"bad proxy", write("proxy.yaml", "proxy:\n  upstream: db:5432\n  connect_timeout: soon\n"), 2, []string{"connect-timeout (rules file setting proxy.connect_timeout)"}},
		{"missing", filepath.Join(dir, "absent.yaml"), 2, []string{"absent.yaml"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			args := []string{"check-config"}
			if c.file != "" {
				args = append(args, c.file)
			}
			code := run(args, stdio{in: strings.NewReader(""), out: &out, err: &errb})
			if code != c.code {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", code, c.code, out.String(), errb.String())
			}
			for _, w := range c.want {
				if !strings.Contains(out.String()+errb.String(), w) {
					t.Errorf("output lacks %q:\n%s%s", w, out.String(), errb.String())
				}
			}
		})
	}
}

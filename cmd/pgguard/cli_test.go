package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
)

// Every way of asking for help prints every command and serve's flags on
// stdout and exits 0.
func TestHelpListsCommandsAndServeFlags(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{{"--help"}, {"-h"}, {"help"}, {"serve", "--help"}, {"--listen", "127.0.0.1:1", "-h"}} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			code, out, errOut := runCmd(t, "", args...)
			if code != 0 || errOut != "" {
				t.Fatalf("exit %d, stderr %q; want 0 and nothing", code, errOut)
			}
			for name := range commands {
				if !regexp.MustCompile(`(?m)^  ` + name + ` +\S`).MatchString(out) {
					t.Errorf("help does not list command %s:\n%s", name, out)
				}
			}
			for _, s := range serveSettings() {
				if !strings.Contains(out, "-"+s.name+" ") && !strings.Contains(out, "-"+s.name+"\n") {
					t.Errorf("help does not list serve flag --%s", s.name)
				}
			}
		})
	}
}

// Each command's --help (and `pgguard help CMD`) is its usage on stdout,
// exit 0; a bad flag is the usage on stderr, exit 2.
func TestCommandHelp(t *testing.T) {
	t.Parallel()
	for name := range commands {
		t.Run(name, func(t *testing.T) {
			for _, args := range [][]string{{name, "--help"}, {name, "-h"}, {"help", name}} {
				code, out, errOut := runCmd(t, "", args...)
				if code != 0 || !strings.HasPrefix(out, "usage: pgguard") || errOut != "" {
					t.Errorf("%v: exit %d, stdout %q, stderr %q; want 0 and the usage on stdout", args, code, out, errOut)
				}
			}
			code, out, errOut := runCmd(t, "", name, "--no-such-flag")
			if code != 2 || out != "" || !strings.Contains(errOut, "usage: pgguard") || !strings.Contains(errOut, "no-such-flag") {
				t.Errorf("bad flag: exit %d, stdout %q, stderr %q; want 2 and the problem and usage on stderr", code, out, errOut)
			}
		})
	}
}

func TestUnknownCommand(t *testing.T) {
	t.Parallel()
	code, _, errOut := runCmd(t, "", "frobnicate")
	if code != 2 || !strings.Contains(errOut, `unknown command "frobnicate"`) || !strings.Contains(errOut, "check-config") {
		t.Errorf("exit %d, stderr %q", code, errOut)
	}
}

var versionOutput = regexp.MustCompile(`^pgguard (\S+)
  commit:     (\S+)
(?:  built:      (\S+)
)?  go:         go1\.\d+\S* \S+/\S+
  postgresql: (\d+\.\d+) grammar \(pg_query_go v6\.\S+\)
$`)

func TestVersion(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{{"version"}, {"--version"}} {
		code, out, _ := runCmd(t, "", args...)
		m := versionOutput.FindStringSubmatch(out)
		if code != 0 || m == nil {
			t.Fatalf("%v: exit %d, output:\n%s", args, code, out)
		}
		// pg_query_go v6 embeds the PostgreSQL 17 parser.
		if !strings.HasPrefix(m[4], "17.") {
			t.Errorf("grammar %s, want 17.x", m[4])
		}
	}
	if code, _, _ := runCmd(t, "", "version", "extra"); code != 2 {
		t.Errorf("version with an argument: exit %d, want 2", code)
	}
}

func TestFormatServerVersion(t *testing.T) {
	t.Parallel()
	for n, want := range map[int]string{170007: "17.7", 150018: "15.18", 100023: "10.23", 90624: "9.6.24", 180000: "18.0"} {
		if got := formatServerVersion(n); got != want {
			t.Errorf("formatServerVersion(%d) = %s, want %s", n, got, want)
		}
	}
}

var (
	makeOnce sync.Once
	madePath string
	makeErr  error
)

// Stamped by madeBinary.
const (
	stampVersion = "v0.0.0-stamp-test"
	stampCommit  = "0123456789abcdef0123456789abcdef01234567"
	stampDate    = "2026-01-02T03:04:05Z"
)

// madeBinary builds pgguard once per test run the way releases are built,
// with `make build` (so with its -ldflags), stamping known values.
func madeBinary(t *testing.T) string {
	t.Helper()
	makeOnce.Do(func() {
		dir, err := os.MkdirTemp("", "pgguard-make-")
		if err != nil {
			makeErr = err
			return
		}
		madePath = filepath.Join(dir, "pgguard")
		cmd := exec.Command("make", "-s", "build", "BIN="+madePath, "VERSION="+stampVersion, "COMMIT="+stampCommit, "DATE="+stampDate)
		cmd.Dir = "../.."
		if out, err := cmd.CombinedOutput(); err != nil {
			makeErr = err
			t.Logf("make build:\n%s", out)
		}
	})
	if makeErr != nil {
		t.Fatalf("make build: %v", makeErr)
	}
	return madePath
}

// `make build` stamps version, commit and date; by default the version is
// git describe's and the commit the checked-out one.
func TestMakeBuildStampsVersion(t *testing.T) {
	t.Parallel()
	out, err := exec.Command(madeBinary(t), "version").Output()
	if err != nil {
		t.Fatal(err)
	}
	m := versionOutput.FindStringSubmatch(string(out))
	if m == nil || m[1] != stampVersion || m[2] != stampCommit || m[3] != stampDate {
		t.Fatalf("version output:\n%s\nwant version %s, commit %s, built %s", out, stampVersion, stampCommit, stampDate)
	}
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("no git: cannot check the default stamps")
	}
	dryRun := exec.Command("make", "-n", "build")
	dryRun.Dir = "../.."
	plan, err := dryRun.Output()
	if err != nil {
		t.Fatal(err)
	}
	describe := exec.Command("git", "describe", "--tags", "--always", "--dirty")
	describe.Dir = "../.."
	want, err := describe.Output()
	if err != nil {
		t.Skipf("git describe: %v (not a git checkout?)", err)
	}
	if !strings.Contains(string(plan), "-X main.version="+strings.TrimSpace(string(want))+" ") ||
		!regexp.MustCompile(`-X main.commit=[0-9a-f]{40} `).Match(plan) {
		t.Errorf("make build does not stamp git describe's version (%s) and the commit:\n%s", strings.TrimSpace(string(want)), plan)
	}
}

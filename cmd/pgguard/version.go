package main

import (
	"flag"
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/pgguard/pgguard/policy/sqltext"
)

// Set at build time by `make build`:
// -ldflags "-X main.version=... -X main.commit=... -X main.date=...".
var (
	version = "dev"
	commit  = ""
	date    = ""
)

func init() {
	register("version", "print the version, commit, Go version and PostgreSQL grammar", runVersion)
}

func runVersion(args []string, io stdio) int {
	fs := flag.NewFlagSet("version", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: pgguard version (or pgguard --version)\n\nPrints the version, the commit and build date stamped by `make build`, the Go\nversion and the PostgreSQL grammar pg_query was built with.")
	}
	if err := parseFlags(fs, args, io); err != nil {
		return exitCode(err)
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(io.err, "pgguard version: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	info := buildInfo()
	fmt.Fprintf(io.out, "pgguard %s\n", info.version)
	fmt.Fprintf(io.out, "  commit:     %s\n", info.commit)
	if info.date != "" {
		fmt.Fprintf(io.out, "  built:      %s\n", info.date)
	}
	fmt.Fprintf(io.out, "  go:         %s %s/%s\n", info.goVersion, runtime.GOOS, runtime.GOARCH)
	fmt.Fprintf(io.out, "  postgresql: %s grammar (pg_query_go %s)\n", info.pgGrammar, info.pgQuery)
	return 0
}

// versionInfo is what `pgguard version` prints.
type versionInfo struct {
	version, commit, date, goVersion, pgGrammar, pgQuery string
}

// buildInfo prefers what `make build` stamped; a plain `go build` or `go
// install` still gets the module version and the VCS revision Go records.
func buildInfo() versionInfo {
	v := versionInfo{version: version, commit: commit, date: date, goVersion: runtime.Version(), pgQuery: "unknown"}
	if bi, ok := debug.ReadBuildInfo(); ok {
		if v.version == "dev" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			v.version = bi.Main.Version
		}
		settings := map[string]string{}
		for _, s := range bi.Settings {
			settings[s.Key] = s.Value
		}
		if v.commit == "" && settings["vcs.revision"] != "" {
			v.commit = settings["vcs.revision"]
			if settings["vcs.modified"] == "true" {
				v.commit += " (modified)"
			}
		}
		for _, d := range bi.Deps {
			if d.Path == "github.com/pganalyze/pg_query_go/v6" {
				v.pgQuery = d.Version
			}
		}
	}
	if v.commit == "" {
		v.commit = "unknown"
	}
	v.pgGrammar = pgGrammarVersion()
	return v
}

// pgGrammarVersion is the PostgreSQL version whose parser pg_query embeds,
// as libpg_query reports it with every parse tree (PG_VERSION_NUM, e.g.
// 170007 for 17.7).
func pgGrammarVersion() string {
	tree, err := sqltext.PgParse("SELECT 1")
	if err != nil {
		return "unknown"
	}
	return formatServerVersion(int(tree.Version))
}

// formatServerVersion turns a PG_VERSION_NUM (server_version_num) into the
// version people read: 170007 is 17.7, 90624 is 9.6.24.
func formatServerVersion(n int) string {
	if n < 100000 {
		return fmt.Sprintf("%d.%d.%d", n/10000, n/100%100, n%100)
	}
	return fmt.Sprintf("%d.%d", n/10000, n%100)
}

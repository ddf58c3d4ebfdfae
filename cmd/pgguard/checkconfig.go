package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/pgguard/pgguard/policy"
)

func init() {
	register("check-config", "validate a rules file (policy and proxy settings) and exit", checkConfig)
}

// checkConfig validates a rules file the way serve would load it: every
// policy error with file:line:column, then the proxy: section's settings.
// Exit status 0 when valid, 2 otherwise.
func checkConfig(args []string, io stdio) int {
	fs := flag.NewFlagSet("check-config", flag.ContinueOnError)
	fs.SetOutput(io.err)
	rules := fs.String("rules", "", "rules file to check (or give it as the argument); default: the built-in policy")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: pgguard check-config [--rules] FILE")
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args, io); err != nil {
		return exitCode(err)
	}
	path := *rules
	if fs.NArg() > 1 || (fs.NArg() == 1 && path != "") {
		fs.Usage()
		return 2
	}
	if fs.NArg() == 1 {
		path = fs.Arg(0)
	}
	cfg, err := loadPolicy(path)
	if err != nil {
		fmt.Fprintf(io.err, "%v\n", err)
		return 2
	}
	if _, err := policy.NewEngine(cfg); err != nil {
		fmt.Fprintf(io.err, "%s: %v\n", nameOr(path), err)
		return 2
	}
	// The proxy: section, with the environment as serve would see it but
	// no flags; a missing upstream is fine here (it may come from a flag).
	sfs, settings := newServeFlags(io.err)
	sfs.Parse(nil)
	resolve(sfs, settings, os.Getenv, &cfg.Proxy)
	if lookup(settings, "upstream").value == "" && len(cfg.Proxy.Targets) == 0 {
		lookup(settings, "upstream").value = "127.0.0.1:5432"
	}
	if _, err := validate(settings, &cfg.Proxy); err != nil {
		fmt.Fprintf(io.err, "%s: invalid proxy settings:\n%s\n", nameOr(path), indent(err.Error()))
		return 2
	}
	fmt.Fprintf(io.out, "%s: ok (%d rules, mode %s, %d profiles)\n", nameOr(path), len(policy.Rules()), cfg.Mode, len(cfg.Profiles))
	return 0
}

func nameOr(path string) string {
	if path == "" {
		return "built-in rules.yaml"
	}
	return path
}

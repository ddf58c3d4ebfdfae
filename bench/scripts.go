package main

import (
	"embed"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// appScriptFiles are pgbench scripts of application traffic: what ORMs and
// drivers send, next to pgbench's own built-in scripts.
//
//go:embed scripts/*.sql
var appScriptFiles embed.FS

// builtinScripts are pgbench's own (-b).
var builtinScripts = []string{"select-only", "tpcb-like"}

// appScripts lists the embedded scripts by name (file name without .sql).
func appScripts() []string {
	entries, err := appScriptFiles.ReadDir("scripts")
	if err != nil {
		panic(err) // embedded at build time
	}
	var names []string
	for _, e := range entries {
		names = append(names, strings.TrimSuffix(e.Name(), ".sql"))
	}
	slices.Sort(names)
	return names
}

// isBuiltin reports whether script is one of pgbench's built-in scripts.
func isBuiltin(script string) bool { return slices.Contains(builtinScripts, script) }

// writeAppScripts writes the embedded scripts into dir, for pgbench -f, and
// returns their paths by name.
func writeAppScripts(dir string) (map[string]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("creating %s: %w", dir, err)
	}
	paths := map[string]string{}
	for _, name := range appScripts() {
		text, err := appScriptFiles.ReadFile("scripts/" + name + ".sql")
		if err != nil {
			return nil, err
		}
		p := filepath.Join(dir, name+".sql")
		if err := os.WriteFile(p, text, 0o644); err != nil {
			return nil, fmt.Errorf("writing %s: %w", p, err)
		}
		paths[name] = p
	}
	return paths, nil
}

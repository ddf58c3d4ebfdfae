package main

import (
	"strings"
	"testing"
)

func TestCountLoggedStatements(t *testing.T) {
	t.Parallel()
	log := `2026-11-30 10:00:00.001 UTC [42] LOG:  statement: BEGIN;
2026-11-30 10:00:00.002 UTC [42] LOG:  execute <unnamed>: SELECT abalance FROM pgbench_accounts WHERE aid = $1
2026-11-30 10:00:00.002 UTC [42] DETAIL:  parameters: $1 = '7'
2026-11-30 10:00:00.003 UTC [42] LOG:  execute P0_2: UPDATE pgbench_accounts SET abalance = abalance + $1
	WHERE aid = $2
2026-11-30 10:00:00.004 UTC [43] LOG:  statement: SELECT c.relkind IN ('p', 'I') FROM pg_catalog.pg_class c
2026-11-30 10:00:00.005 UTC [42] WARNING:  there is no transaction in progress
`
	n, err := countLoggedStatements(strings.NewReader(log))
	if err != nil {
		t.Fatal(err)
	}
	if n != 4 {
		t.Fatalf("counted %d statements, want 4", n)
	}
}

func TestWorkloads(t *testing.T) {
	t.Parallel()
	o, err := parseFlags([]string{"--clients", "1,8", "--modes", "simple", "--app-modes", "extended,prepared", "--app-clients", "64", "--connect", ""})
	if err != nil {
		t.Fatal(err)
	}
	matrix, connect := workloads(o)
	apps := appScripts()
	if len(apps) < 4 {
		t.Fatalf("only %d application scripts embedded: %v", len(apps), apps)
	}
	if want := 2*1*2 + len(apps)*2*1; len(matrix) != want || len(connect) != 0 {
		t.Fatalf("%d cells and %d -C cells, want %d and 0: %v", len(matrix), len(connect), want, matrix)
	}
	for _, w := range matrix {
		if !isBuiltin(w.script) && w.clients != 64 {
			t.Errorf("application script in %v", w)
		}
	}
	if got := len(countWorkloads(o)); got != 2+len(apps)*2 {
		t.Errorf("%d counted workloads, want %d", got, 2+len(apps)*2)
	}
	if _, err := parseFlags([]string{"--app-scripts", "nope"}); err == nil {
		t.Error("unknown application script accepted")
	}
	if o, err := parseFlags([]string{"--app-scripts", ""}); err != nil || len(o.appScripts) != 0 {
		t.Errorf("--app-scripts '' = %v, %v; want none", o.appScripts, err)
	}
}

func TestScriptArgs(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	paths, err := writeAppScripts(dir)
	if err != nil {
		t.Fatal(err)
	}
	b := &bencher{scale: 10, scripts: paths}
	got := strings.Join(b.scriptArgs("h", "5", workload{script: "cte-read", mode: "extended", clients: 8}), " ")
	if !strings.Contains(got, "-f "+paths["cte-read"]+" -s 10 -M extended -c 8") {
		t.Errorf("cte-read args: %s", got)
	}
	got = strings.Join(b.scriptArgs("h", "5", workload{script: "select-only", mode: "simple", clients: 1}), " ")
	if !strings.Contains(got, "-b select-only -M simple -c 1") || strings.Contains(got, "-f") {
		t.Errorf("select-only args: %s", got)
	}
}

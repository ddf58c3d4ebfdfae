package main

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"strings"
)

// machine describes where the numbers were measured.
type machine struct {
	CPUs       int
	Model      string
	MemoryGiB  float64
	Kernel     string
	LoadAvg    string // at the start of the run
	PostgreSQL string
	PgBouncer  string
	Pgbench    string
	Pgguard    string // version and commit
}

// describeMachine reads /proc and asks each program for its version. What
// cannot be found is left as "unknown": the report is still worth having.
func describeMachine(pgVersion, pgbench, pgbouncerBin, pgguardBin string) machine {
	m := machine{
		CPUs:       runtime.NumCPU(),
		Model:      cpuModel(),
		Kernel:     firstLine(readFile("/proc/sys/kernel/osrelease")),
		LoadAvg:    loadAvg(),
		PostgreSQL: pgVersion,
		PgBouncer:  firstLine(output(pgbouncerBin, "--version")),
		Pgbench:    firstLine(output(pgbench, "--version")),
		Pgguard:    firstLine(output(pgguardBin, "version")),
	}
	if kb, err := statusField("/proc/meminfo", "MemTotal"); err == nil {
		m.MemoryGiB = float64(kb) / (1 << 20)
	}
	if rev := firstLine(output("git", "describe", "--always", "--dirty")); rev != "unknown" {
		m.Pgguard += " (" + rev + ")"
	}
	return m
}

// shortName is the machine part of the results file name, e.g. "2cpu-amd-epyc".
func (m machine) shortName() string {
	slug := strings.Trim(regexp.MustCompile(`[^a-z0-9]+`).ReplaceAllString(strings.ToLower(m.Model), "-"), "-")
	if parts := strings.Split(slug, "-"); len(parts) > 3 {
		slug = strings.Join(parts[:3], "-")
	}
	if slug == "" {
		slug = "unknown"
	}
	return fmt.Sprintf("%dcpu-%s", m.CPUs, slug)
}

func cpuModel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return "unknown"
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}

// loadAvg is the 1, 5 and 15 minute load average.
func loadAvg() string {
	f := strings.Fields(readFile("/proc/loadavg"))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

func readFile(path string) string {
	b, _ := os.ReadFile(path)
	return string(b)
}

// output runs a program for its version line; failures read as "unknown".
func output(name string, args ...string) string {
	b, err := exec.Command(name, args...).Output()
	if err != nil {
		return "unknown"
	}
	return string(b)
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	if s == "" {
		return "unknown"
	}
	return s
}

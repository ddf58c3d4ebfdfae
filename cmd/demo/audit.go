package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
)

// auditRecord holds the fields of an audit log line that the summary shows;
// README.md ("Audit log") documents them all.
type auditRecord struct {
	Statement   string   `json:"statement"`
	Decision    string   `json:"decision"`
	Rules       []string `json:"rules"`
	Outcome     string   `json:"outcome"`
	SQLState    string   `json:"sqlstate"`
	RewrittenTo string   `json:"rewritten_to"`
}

// summarizeAudit prints one short line per audit record: the decision, the
// outcome, the statement (cut) and the rules that matched.
func summarizeAudit(w io.Writer, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("reading the audit log: %w", err)
	}
	defer f.Close()
	var recs []auditRecord
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var r auditRecord
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			return fmt.Errorf("audit log %s: %w", path, err)
		}
		recs = append(recs, r)
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("reading the audit log: %w", err)
	}
	fmt.Fprintf(w, "\n==> the audit log: %d JSON lines (--audit-log; one per DDL statement and per rule match), in short\n", len(recs))
	fmt.Fprintf(w, "   %-8s %-14s %s\n", "decision", "outcome", "statement [rules]")
	for _, r := range recs {
		outcome := r.Outcome
		if r.SQLState != "" {
			outcome += " " + r.SQLState
		}
		line := cut(r.Statement, 60)
		if len(r.Rules) > 0 {
			line += " [" + strings.Join(r.Rules, ", ") + "]"
		}
		fmt.Fprintf(w, "   %-8s %-14s %s\n", r.Decision, outcome, line)
		if r.RewrittenTo != "" {
			fmt.Fprintf(w, "   %-8s %-14s ran instead: %s\n", "", "", cut(r.RewrittenTo, 60))
		}
	}
	return nil
}

// cut shortens s to n runes, marking the cut.
func cut(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

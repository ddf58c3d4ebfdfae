package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
)

// The statement count answers: for each statement a client sends, how many
// does the server execute? Through a pure relay it is one; a proxy that
// asks the server questions of its own (catalog look-ups, EXPLAIN) shows
// more. It is measured from the server's own log: the bench database gets
// log_statement = 'all' for the count only, and every statement the server
// runs is one line "LOG:  statement: ..." (simple protocol) or "LOG:
// execute ...: ..." (extended protocol, one per Execute), whoever sent it.
// Counting the log between two offsets needs no extension
// (pg_stat_statements) and sees the proxy's own queries whatever
// connection, protocol or transaction state they use; the counters of
// pg_stat_database count transactions, not statements, and a proxy's query
// inside the client's transaction would not show there. The direct run of
// the same script gives the client's statement count.

// statementCount is one counted workload: server statements per
// transaction through each target.
type statementCount struct {
	w     workload
	perTx map[string]float64 // by target name
}

// countStatements runs every workload with 1 client for tx transactions
// through every target, with log_statement = 'all' on the bench database.
func countStatements(ctx context.Context, b *bencher, targets []*target, ws []workload, tx int) ([]statementCount, error) {
	if _, err := b.admin.Exec(ctx, "ALTER DATABASE "+benchDB+" SET log_statement = 'all'"); err != nil {
		return nil, fmt.Errorf("turning log_statement on: %w", err)
	}
	defer b.admin.Exec(context.Background(), "ALTER DATABASE "+benchDB+" RESET log_statement")
	var out []statementCount
	for _, w := range ws {
		c := statementCount{w: w, perTx: map[string]float64{}}
		for _, t := range targets {
			n, err := b.countRun(ctx, t, w, tx)
			if err != nil {
				return nil, err
			}
			c.perTx[t.name] = float64(n) / float64(tx)
		}
		fmt.Fprintf(os.Stderr, "    %-34s server statements per transaction: direct %.2f, pgguard %.2f, PgBouncer %.2f\n",
			w, c.perTx[direct], c.perTx[pgguard], c.perTx[pgbouncer])
		out = append(out, c)
	}
	return out, nil
}

// countRun runs pgbench -t tx against t and returns how many statements
// the server logged meanwhile.
func (b *bencher) countRun(ctx context.Context, t *target, w workload, tx int) (int, error) {
	if _, err := b.admin.Exec(ctx, "TRUNCATE pgbench_history"); err != nil {
		return 0, fmt.Errorf("emptying pgbench_history: %w", err)
	}
	st, err := os.Stat(b.serverLog)
	if err != nil {
		return 0, fmt.Errorf("the server log: %w", err)
	}
	host, port, _ := net.SplitHostPort(t.addr)
	args := append(b.scriptArgs(host, port, w), "-t", strconv.Itoa(tx), benchDB)
	cmd := exec.CommandContext(ctx, b.pgbench, args...)
	cmd.Env = append(os.Environ(), "PGSSLMODE=disable", "PGAPPNAME=pgguard-bench-count")
	if out, err := cmd.CombinedOutput(); err != nil {
		if ctx.Err() != nil {
			return 0, ctx.Err()
		}
		return 0, fmt.Errorf("pgbench %s -t %d against %s: %w\n%s", w, tx, t.name, err, indent(strings.TrimSpace(string(out))))
	}
	f, err := os.Open(b.serverLog)
	if err != nil {
		return 0, fmt.Errorf("the server log: %w", err)
	}
	defer f.Close()
	if _, err := f.Seek(st.Size(), io.SeekStart); err != nil {
		return 0, fmt.Errorf("the server log: %w", err)
	}
	return countLoggedStatements(f)
}

// countLoggedStatements counts the lines of a server log that report a
// statement run (log_statement = 'all').
func countLoggedStatements(r io.Reader) (int, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	n := 0
	for sc.Scan() {
		line := sc.Text()
		if strings.Contains(line, "LOG:  statement: ") || strings.Contains(line, "LOG:  execute ") {
			n++
		}
	}
	return n, sc.Err()
}

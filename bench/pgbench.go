package main

import (
	"bufio"
	"context"
	"fmt"
	"math"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/pgguard/pgguard/internal/testkit/pgtest"
)

// benchDB is the database pgbench -i fills.
const benchDB = "bench"

// workload is one pgbench configuration: a cell of the report.
type workload struct {
	script  string // built-in script (-b) or application script (bench/scripts, -f)
	mode    string // query mode (-M): simple, extended or prepared
	clients int
	connect bool // a new connection per transaction (-C)
}

func (w workload) String() string {
	s := fmt.Sprintf("%s -M %s -c %d", w.script, w.mode, w.clients)
	if w.connect {
		s += " -C"
	}
	return s
}

// measurement is what one pgbench run against one target gave.
type measurement struct {
	tps    float64 // pgbench's own figure
	txns   int     // transactions processed
	failed int     // transactions that failed (serialization, deadlock)
	avgMs  float64 // mean transaction latency, from the per-transaction log
	p99Ms  float64 // 99th percentile transaction latency
	connMs float64 // pgbench's average connection time; -C runs only
	// use is what the proxy process used during the run; hasCPU is false
	// for direct, where there is no proxy.
	use    usage
	hasCPU bool
}

// cpuPer1k is proxy CPU seconds (user and system) per 1,000 transactions.
func (m measurement) cpuPer1k() float64 {
	return m.perTx((m.use.user + m.use.sys).Seconds()) * 1000
}

// perTx divides a quantity of the run by its transactions.
func (m measurement) perTx(v float64) float64 {
	if m.txns == 0 {
		return 0
	}
	return v / float64(m.txns)
}

// bencher runs pgbench against targets.
type bencher struct {
	pg       *pgtest.Server
	pgbench  string // path of the pgbench program
	workDir  string // per-run log directories are made here
	duration time.Duration
	scale    int               // pgbench -i -s, passed as -s with -f scripts
	scripts  map[string]string // application scripts' paths by name
	// serverLog is the file PostgreSQL's stderr goes to; the statement
	// count reads it.
	serverLog string
	// admin is a direct connection to the bench database, for the vacuum
	// before each run.
	admin *pgx.Conn
}

// initialize creates the bench database and fills it with pgbench -i.
func (b *bencher) initialize(ctx context.Context, scale int) error {
	if _, err := b.pg.CreateDatabase(benchDB); err != nil {
		return fmt.Errorf("creating database %s: %w", benchDB, err)
	}
	cmd := exec.CommandContext(ctx, b.pgbench, "-i", "-q", "-s", strconv.Itoa(scale), "-h", b.pg.Host, "-p", strconv.Itoa(b.pg.Port), "-U", pgtest.SuperUser, benchDB)
	cmd.Env = append(os.Environ(), "PGSSLMODE=disable")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("pgbench -i -s %d: %w\n%s", scale, err, indent(string(out)))
	}
	admin, err := pgx.Connect(ctx, b.pg.DSN(pgtest.SuperUser, benchDB))
	if err != nil {
		return fmt.Errorf("connecting to database %s: %w", benchDB, err)
	}
	b.admin = admin
	return nil
}

// close closes the direct connection.
func (b *bencher) close() {
	if b.admin != nil {
		b.admin.Close(context.Background())
	}
}

// run runs one workload against one target. It does what pgbench does before
// a run (vacuum the small tables, empty the history) itself, directly on the
// server, so that the measured window holds only the workload.
func (b *bencher) run(ctx context.Context, t *target, w workload) (measurement, error) {
	return b.runFor(ctx, t, w, b.duration)
}

// runFor is run with a duration of its own.
func (b *bencher) runFor(ctx context.Context, t *target, w workload, d time.Duration) (measurement, error) {
	var m measurement
	for _, q := range []string{"VACUUM pgbench_branches", "VACUUM pgbench_tellers", "TRUNCATE pgbench_history"} {
		if _, err := b.admin.Exec(ctx, q); err != nil {
			return m, fmt.Errorf("%s before %s: %w", q, w, err)
		}
	}
	dir, err := os.MkdirTemp(b.workDir, "pgbench-")
	if err != nil {
		return m, fmt.Errorf("creating a directory for the pgbench log: %w", err)
	}
	defer os.RemoveAll(dir)

	host, port, _ := net.SplitHostPort(t.addr)
	args := append(b.scriptArgs(host, port, w), "-j", strconv.Itoa(min(w.clients, runtime.NumCPU())),
		"-T", strconv.Itoa(int(d.Seconds())), "-l", "--log-prefix", "tx")
	if w.connect {
		args = append(args, "-C")
	}
	cmd := exec.CommandContext(ctx, b.pgbench, append(args, benchDB)...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "PGSSLMODE=disable", "PGAPPNAME=pgguard-bench")

	var use0 usage
	if t.proc != nil {
		if use0, err = usageOf(t.proc.pid()); err != nil {
			return m, fmt.Errorf("%s: %w", t.name, err)
		}
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		if ctx.Err() != nil {
			return m, ctx.Err()
		}
		err = fmt.Errorf("pgbench %s against %s: %w\n%s", w, t.name, err, indent(strings.TrimSpace(string(out))))
		if t.proc != nil && t.proc.exited() {
			err = fmt.Errorf("%w\n%s exited; its log ends with:\n%s", err, t.name, indent(t.proc.logTail()))
		}
		return m, err
	}
	if t.proc != nil {
		use1, err := usageOf(t.proc.pid())
		if err != nil {
			return m, fmt.Errorf("%s: %w", t.name, err)
		}
		m.use, m.hasCPU = use1.sub(use0), true
	}
	if err := parseSummary(string(out), &m); err != nil {
		return m, fmt.Errorf("pgbench %s against %s: %w\n%s", w, t.name, err, indent(string(out)))
	}
	lat, failed, err := readLatencies(dir)
	if err != nil {
		return m, fmt.Errorf("pgbench %s against %s: %w", w, t.name, err)
	}
	m.failed = max(m.failed, failed)
	m.avgMs, m.p99Ms = mean(lat)/1000, percentile(lat, 0.99)/1000
	return m, nil
}

// scriptArgs are pgbench's connection, script, mode and client arguments
// for w against host:port.
func (b *bencher) scriptArgs(host, port string, w workload) []string {
	args := []string{"-h", host, "-p", port, "-U", pgtest.SuperUser, "-n"}
	if isBuiltin(w.script) {
		args = append(args, "-b", w.script)
	} else {
		// With -f only, pgbench sets :scale from -s, not from the tables.
		args = append(args, "-f", b.scripts[w.script], "-s", strconv.Itoa(b.scale))
	}
	return append(args, "-M", w.mode, "-c", strconv.Itoa(w.clients))
}

var (
	tpsRe       = regexp.MustCompile(`(?m)^tps = ([0-9.]+)`)
	processedRe = regexp.MustCompile(`(?m)^number of transactions actually processed: ([0-9]+)`)
	failedRe    = regexp.MustCompile(`(?m)^number of failed transactions: ([0-9]+)`)
	connTimeRe  = regexp.MustCompile(`(?m)^average connection time = ([0-9.]+) ms`)
)

// parseSummary reads TPS, the transaction count, failures and the average
// connection time from pgbench's report.
func parseSummary(out string, m *measurement) error {
	tps := tpsRe.FindStringSubmatch(out)
	n := processedRe.FindStringSubmatch(out)
	if tps == nil || n == nil {
		return fmt.Errorf("no tps or transaction count in pgbench's output")
	}
	m.tps, _ = strconv.ParseFloat(tps[1], 64)
	m.txns, _ = strconv.Atoi(n[1])
	if f := failedRe.FindStringSubmatch(out); f != nil {
		m.failed, _ = strconv.Atoi(f[1])
	}
	if c := connTimeRe.FindStringSubmatch(out); c != nil {
		m.connMs, _ = strconv.ParseFloat(c[1], 64)
	}
	return nil
}

// readLatencies reads the per-transaction latencies (µs) from the pgbench
// logs in dir, one file per pgbench thread. A line is
// "client_id transaction_no time script_no time_epoch time_us"; time is
// "failed" or "skipped" for transactions that did not complete.
func readLatencies(dir string) (lat []int64, failed int, err error) {
	files, err := filepath.Glob(filepath.Join(dir, "tx.*"))
	if err != nil || len(files) == 0 {
		return nil, 0, fmt.Errorf("no per-transaction log in %s", dir)
	}
	for _, name := range files {
		f, err := os.Open(name)
		if err != nil {
			return nil, 0, fmt.Errorf("reading the pgbench log: %w", err)
		}
		lat, failed, err = appendLatencies(bufio.NewScanner(f), lat, failed)
		f.Close()
		if err != nil {
			return nil, 0, fmt.Errorf("reading %s: %w", name, err)
		}
	}
	if len(lat) == 0 {
		return nil, 0, fmt.Errorf("the pgbench log in %s holds no completed transaction", dir)
	}
	return lat, failed, nil
}

// appendLatencies appends the latencies of one pgbench log to lat.
func appendLatencies(sc *bufio.Scanner, lat []int64, failed int) ([]int64, int, error) {
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 6 {
			return lat, failed, fmt.Errorf("malformed pgbench log line %q", sc.Text())
		}
		us, err := strconv.ParseInt(f[2], 10, 64)
		if err != nil {
			failed++ // "failed" or "skipped"
			continue
		}
		lat = append(lat, us)
	}
	return lat, failed, sc.Err()
}

func mean(xs []int64) float64 {
	if len(xs) == 0 {
		return 0
	}
	var sum float64
	for _, x := range xs {
		sum += float64(x)
	}
	return sum / float64(len(xs))
}

// percentile is the nearest-rank p-quantile (0 < p <= 1); it sorts xs.
func percentile(xs []int64, p float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	slices.Sort(xs)
	i := int(math.Ceil(p*float64(len(xs)))) - 1
	return float64(xs[min(max(i, 0), len(xs)-1)])
}

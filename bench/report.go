package main

import (
	"fmt"
	"math"
	"strings"
	"time"
)

// cell is one workload measured against every target.
type cell struct {
	w workload
	m map[string]measurement // by target name
}

// report is everything one harness run measured.
type report struct {
	o       options
	machine machine
	date    time.Time
	elapsed time.Duration
	cells   []cell // the pgbench matrix
	connect []cell // new connection per transaction
	floor   []cell // pgguard, bench/floor and PgBouncer
	idle    []idleResult
	counts  []statementCount
}

// fileName is the report's name under bench/results.
func (r *report) fileName() string {
	return r.date.Format("2006-01-02") + "-" + r.machine.shortName() + ".md"
}

// markdown renders the whole report.
func (r *report) markdown() string {
	var b strings.Builder
	m := r.machine
	fmt.Fprintf(&b, "# pgguard benchmark, %s, %s\n\n", r.date.Format("2006-01-02"), m.shortName())
	fmt.Fprintf(&b, "- Machine: %d CPUs (%s), %.1f GiB memory, Linux %s; load average at the start %s (a shared machine: other jobs ran alongside).\n",
		m.CPUs, m.Model, m.MemoryGiB, m.Kernel, m.LoadAvg)
	fmt.Fprintf(&b, "- Software: PostgreSQL %s; %s (session mode, pure relay); %s; %s.\n", m.PostgreSQL, m.PgBouncer, m.Pgbench, m.Pgguard)
	fmt.Fprintf(&b, "- Method: pgbench scale %d, `-T %d` per run, `-j` = min(clients, CPUs), the three targets run one after the other in each cell, in an order rotated from cell to cell. The whole run took %s.\n",
		r.o.scale, int(r.o.duration.Seconds()), r.elapsed.Round(time.Second))
	b.WriteString("- Reproduce: `make bench` (bench/README.md explains the columns).\n\n")

	if len(r.cells) > 0 {
		b.WriteString("## Throughput and proxy CPU\n\n")
		r.throughputTable(&b, r.cells)
		b.WriteString("\n## Where the proxies' CPU goes\n\n")
		r.cpuTable(&b, r.cells)
		b.WriteString("\n## Latency (ms, from the per-transaction log)\n\n")
		r.latencyTable(&b, r.cells)
	}
	if len(r.counts) > 0 {
		b.WriteString("\n## Statements the server executed per client statement\n\n")
		r.countTable(&b)
	}
	if len(r.connect) > 0 {
		b.WriteString("\n## New connection per transaction (`pgbench -C -S -M simple`)\n\n")
		r.connectTable(&b)
	}
	if len(r.floor) > 0 {
		b.WriteString("\n## The floor: the cheapest relay Go can run\n\n")
		r.floorTable(&b)
	}
	if len(r.idle) > 0 {
		b.WriteString("\n## Idle connections\n\n")
		r.idleTable(&b)
	}
	b.WriteString("\n## Targets (issues 6 and 14)\n\n")
	r.targets(&b)
	return b.String()
}

func (r *report) throughputTable(b *strings.Builder, cells []cell) {
	row(b, "script", "-M", "clients", "direct TPS", "pgguard TPS", "PgBouncer TPS", "pgguard/direct", "pgguard/PgBouncer",
		"pgguard CPU s/1k tx", "PgBouncer CPU s/1k tx", "CPU pgguard/PgBouncer")
	align(b, 3, 8)
	for _, c := range cells {
		d, g, p := c.m[direct], c.m[pgguard], c.m[pgbouncer]
		row(b, c.w.script, c.w.mode, fmt.Sprint(c.w.clients),
			fmt.Sprintf("%.0f", d.tps), fmt.Sprintf("%.0f", g.tps), fmt.Sprintf("%.0f", p.tps),
			ratio(g.tps, d.tps), ratio(g.tps, p.tps),
			fmt.Sprintf("%.3f", g.cpuPer1k()), fmt.Sprintf("%.3f", p.cpuPer1k()), ratio(g.cpuPer1k(), p.cpuPer1k()))
	}
}

// cpuTable splits each proxy's CPU per transaction into user space and the
// kernel, with its context switches per transaction: the kernel's share is
// mostly the TCP work of relaying, which every proxy pays; what a proxy does
// on top shows in user time and in how often its threads sleep and wake.
func (r *report) cpuTable(b *strings.Builder, cells []cell) {
	row(b, "script", "-M", "clients", "pgguard user µs/tx", "pgguard system µs/tx", "PgBouncer user µs/tx", "PgBouncer system µs/tx",
		"pgguard context switches/tx", "PgBouncer context switches/tx")
	align(b, 3, 6)
	for _, c := range cells {
		g, p := c.m[pgguard], c.m[pgbouncer]
		row(b, c.w.script, c.w.mode, fmt.Sprint(c.w.clients),
			us(g.perTx(g.use.user.Seconds())), us(g.perTx(g.use.sys.Seconds())),
			us(p.perTx(p.use.user.Seconds())), us(p.perTx(p.use.sys.Seconds())),
			fmt.Sprintf("%.2f", g.perTx(float64(g.use.ctxSwitches))), fmt.Sprintf("%.2f", p.perTx(float64(p.use.ctxSwitches))))
	}
	b.WriteString("\nFrom /proc: utime and stime of the process, and the voluntary and involuntary context switches of all its threads, over each run.\n")
}

// floorTable compares pgguard and PgBouncer with bench/floor: one thread,
// one epoll loop, raw system calls, no protocol.
func (r *report) floorTable(b *strings.Builder) {
	row(b, "script", "-M", "clients", "target", "TPS", "CPU µs/tx", "user µs/tx", "system µs/tx", "context switches/tx")
	align(b, 4, 5)
	for _, c := range r.floor {
		for _, name := range []string{pgguard, floorName, pgbouncer} {
			m := c.m[name]
			row(b, c.w.script, c.w.mode, fmt.Sprint(c.w.clients), name, fmt.Sprintf("%.0f", m.tps),
				us(m.perTx((m.use.user + m.use.sys).Seconds())), us(m.perTx(m.use.user.Seconds())), us(m.perTx(m.use.sys.Seconds())),
				fmt.Sprintf("%.2f", m.perTx(float64(m.use.ctxSwitches))))
		}
	}
	b.WriteString("\nbench/floor relays bytes between sockets in one epoll loop on one locked thread, with read(2) and write(2) made as raw system calls, as pgguard makes them; it looks at nothing. pgguard's event loop has the same structure: what pgguard costs above the floor is the price of reading the protocol and each statement's text (and, for sessions handed to the goroutine relay, of two goroutines per session woken by the Go runtime's poller).\n")
}

// us formats seconds as microseconds.
func us(sec float64) string { return fmt.Sprintf("%.1f", sec*1e6) }

func (r *report) latencyTable(b *strings.Builder, cells []cell) {
	row(b, "script", "-M", "clients", "direct avg", "pgguard avg", "PgBouncer avg", "direct p99", "pgguard p99", "PgBouncer p99",
		"pgguard added avg (µs)", "PgBouncer added avg (µs)")
	align(b, 3, 8)
	for _, c := range cells {
		d, g, p := c.m[direct], c.m[pgguard], c.m[pgbouncer]
		row(b, c.w.script, c.w.mode, fmt.Sprint(c.w.clients),
			ms(d.avgMs), ms(g.avgMs), ms(p.avgMs), ms(d.p99Ms), ms(g.p99Ms), ms(p.p99Ms),
			fmt.Sprintf("%+.0f", (g.avgMs-d.avgMs)*1000), fmt.Sprintf("%+.0f", (p.avgMs-d.avgMs)*1000))
	}
	if n := r.failedTransactions(); n > 0 {
		fmt.Fprintf(b, "\n%d transactions failed over all runs (serialization or deadlock errors of the TPC-B-like script); they are left out of the latencies.\n", n)
	}
}

func (r *report) connectTable(b *strings.Builder) {
	row(b, "clients", "direct TPS", "pgguard TPS", "PgBouncer TPS", "pgguard/direct", "pgguard/PgBouncer",
		"direct connect ms", "pgguard connect ms", "PgBouncer connect ms", "pgguard CPU s/1k tx", "PgBouncer CPU s/1k tx")
	align(b, 1, 10)
	for _, c := range r.connect {
		d, g, p := c.m[direct], c.m[pgguard], c.m[pgbouncer]
		row(b, fmt.Sprint(c.w.clients),
			fmt.Sprintf("%.0f", d.tps), fmt.Sprintf("%.0f", g.tps), fmt.Sprintf("%.0f", p.tps),
			ratio(g.tps, d.tps), ratio(g.tps, p.tps),
			ms(d.connMs), ms(g.connMs), ms(p.connMs),
			fmt.Sprintf("%.3f", g.cpuPer1k()), fmt.Sprintf("%.3f", p.cpuPer1k()))
	}
	b.WriteString("\nTPS here includes connecting; \"connect ms\" is pgbench's average connection time.\n")
}

func (r *report) countTable(b *strings.Builder) {
	row(b, "script", "-M", "client statements per tx", "pgguard server statements per client statement", "PgBouncer server statements per client statement")
	align(b, 2, 3)
	for _, c := range r.counts {
		d := c.perTx[direct]
		row(b, c.w.script, c.w.mode, fmt.Sprintf("%.2f", d), ratio(c.perTx[pgguard], d), ratio(c.perTx[pgbouncer], d))
	}
	fmt.Fprintf(b, "\nCounted from the server log with log_statement = all over %d transactions at 1 client per script and target; the direct run's count is what the client sent (bench/count.go).\n", r.o.countTx)
}

func (r *report) idleTable(b *strings.Builder) {
	row(b, "target", "idle connections", "RSS before (KiB)", "RSS after (KiB)", "RSS per connection (KiB)", "time to open them")
	align(b, 1, 5)
	for _, i := range r.idle {
		row(b, i.target, fmt.Sprint(i.conns), fmt.Sprint(i.beforeKiB), fmt.Sprint(i.afterKiB),
			fmt.Sprintf("%.1f", i.perConnKiB()), i.openTime.Round(time.Millisecond).String())
	}
	b.WriteString("\nEach pgguard client connection has its own server connection; PgBouncer links a server connection to a client only when the client sends its first query, so its idle clients hold no server connection.\n")
}

// targets checks the numbers against issue 6's targets and says by how
// much each missed one is missed.
func (r *report) targets(b *strings.Builder) {
	var tps, cpu, lat check
	for _, c := range r.cells {
		g, p, d := c.m[pgguard], c.m[pgbouncer], c.m[direct]
		if c.w.clients >= 8 {
			tps.add(c.w, g.tps >= p.tps, fmt.Sprintf("%s ratio", ratio(g.tps, p.tps)))
		}
		cpu.add(c.w, g.cpuPer1k() <= p.cpuPer1k(), fmt.Sprintf("%.3f vs %.3f s", g.cpuPer1k(), p.cpuPer1k()))
		if c.w.clients == 1 {
			ga, pa := (g.avgMs-d.avgMs)*1000, (p.avgMs-d.avgMs)*1000
			lat.add(c.w, ga <= pa, fmt.Sprintf("%+.0f vs %+.0f µs", ga, pa))
		}
	}
	var stmts check
	for _, c := range r.counts {
		extra := c.perTx[pgguard] - c.perTx[direct]
		stmts.add(c.w, extra < 0.01, fmt.Sprintf("%+.2f statements per transaction", extra))
	}
	tps.write(b, "pgguard TPS ≥ PgBouncer's at 8 and more clients")
	stmts.write(b, "one server statement per client statement through pgguard (fewer than 1 extra per 100 transactions)")
	lat.write(b, "added latency at 1 client ≤ PgBouncer's")
	cpu.write(b, "proxy CPU per 1,000 transactions ≤ PgBouncer's")
	for _, i := range r.idle {
		if i.target != pgguard {
			continue
		}
		verdict := "met"
		if i.perConnKiB() > 64 {
			verdict = fmt.Sprintf("missed by %.1f KiB", i.perConnKiB()-64)
		}
		fmt.Fprintf(b, "- ≤ 64 KiB RSS per idle connection: %.1f KiB, %s.\n", i.perConnKiB(), verdict)
	}
}

// check tallies one target over the cells it applies to.
type check struct {
	met, total int
	misses     []string
}

func (c *check) add(w workload, ok bool, detail string) {
	c.total++
	if ok {
		c.met++
		return
	}
	c.misses = append(c.misses, fmt.Sprintf("%s (%s)", w, detail))
}

func (c *check) write(b *strings.Builder, name string) {
	if c.total == 0 {
		return
	}
	fmt.Fprintf(b, "- %s: met in %d of %d cells", name, c.met, c.total)
	if len(c.misses) > 0 {
		fmt.Fprintf(b, "; missed in %s", strings.Join(c.misses, ", "))
	}
	b.WriteString(".\n")
}

func (r *report) failedTransactions() int {
	n := 0
	for _, c := range r.cells {
		for _, m := range c.m {
			n += m.failed
		}
	}
	return n
}

// row writes one Markdown table row.
func row(b *strings.Builder, cols ...string) {
	b.WriteString("| " + strings.Join(cols, " | ") + " |\n")
}

// align writes the header separator: left-aligned text columns, then
// right-aligned numeric ones.
func align(b *strings.Builder, text, numeric int) {
	b.WriteString("|" + strings.Repeat("---|", text) + strings.Repeat("--:|", numeric) + "\n")
}

func ratio(a, b float64) string {
	if b == 0 || math.IsNaN(a/b) {
		return "n/a"
	}
	return fmt.Sprintf("%.2f", a/b)
}

func ms(v float64) string { return fmt.Sprintf("%.3f", v) }

package observe

import (
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pgguard/pgguard/policy"
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics exports what pgguard saw, decided and did as Prometheus metrics
// in the pgguard namespace. It implements Observer. Labels carry only
// bounded values (target, rule id, action, command tag, outcome class),
// never statement text.
type Metrics struct {
	clientOpen, serverOpen    *prometheus.GaugeVec
	clientTotal, serverTotal  *prometheus.CounterVec
	inspected                 *prometheus.CounterVec
	decisions                 *prometheus.CounterVec
	ddlDuration               *prometheus.HistogramVec
	lockTimeouts, lockRetries *prometheus.CounterVec
	cleanups, parseErrors     *prometheus.CounterVec
	connectFailures           *prometheus.CounterVec
	connectDuration           *prometheus.HistogramVec
	relayed                   *prometheus.CounterVec
	migrations                *prometheus.CounterVec
	reloadOK, reloadTime      prometheus.Gauge
	reloads                   *prometheus.CounterVec
	queueWait                 *prometheus.HistogramVec
	queueLooks                *prometheus.CounterVec
	queueBlockers             *prometheus.CounterVec
	buildWaits                *prometheus.CounterVec
	borrowed                  *borrowedCollector
	// blockerNames bounds the application_name label of queueBlockers
	// and buildWaits.
	blockerNames boundedLabels

	// targets maps a target name to its pre-resolved children. It is
	// copied on write so that the hot path reads it without a lock and
	// without allocating.
	targets atomic.Pointer[map[string]*targetMetrics]
	mu      sync.Mutex // serialises writers of targets
}

// targetMetrics are the children of one target used on every statement or
// connection.
type targetMetrics struct {
	inspectedDDL, inspectedOther prometheus.Counter
	clientOpen, serverOpen       prometheus.Gauge
	clientTotal, serverTotal     prometheus.Counter
	fromClient, fromServer       prometheus.Counter
	connectFailures              prometheus.Counter
	connectDuration              prometheus.Observer
	lockTimeouts, lockRetries    prometheus.Counter
	cleanups, parseErrors        prometheus.Counter
}

// Outcome classes of the ddl duration histogram.
const (
	OutcomeSuccess     = "success"
	OutcomeError       = "error"
	OutcomeRejected    = "rejected"
	OutcomeLockTimeout = "lock_timeout"
	OutcomeCanceled    = "canceled"
)

// Decision actions of pgguard_decisions_total.
const (
	DecisionAllowed             = "allowed"
	DecisionWarned              = "warned"
	DecisionRewritten           = "rewritten"
	DecisionRejected            = "rejected"
	DecisionAllowedByAnnotation = "allowed_by_annotation"
)

// ddlBuckets span a catalog-only change (milliseconds) to a long
// concurrent index build (an hour).
var ddlBuckets = []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600}

// connectBuckets span a local socket to a slow cross-region TLS handshake.
var connectBuckets = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}

// NewMetrics creates the metrics and registers them with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	const ns = "pgguard"
	counter := func(name, help string, labels ...string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: name, Help: help}, labels)
	}
	gauge := func(name, help string, labels ...string) *prometheus.GaugeVec {
		return prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Name: name, Help: help}, labels)
	}
	m := &Metrics{
		clientOpen:  gauge("client_connections_open", "Client connections open now, by target.", "target"),
		clientTotal: counter("client_connections_total", "Client connections that passed authentication, by target.", "target"),
		serverOpen:  gauge("server_connections_open", "Server connections open now for authenticated clients, by target (one per client connection).", "target"),
		serverTotal: counter("server_connections_total", "Server connections made for authenticated clients, by target.", "target"),
		inspected:   counter("statements_inspected_total", "Statements judged by the policy, by target and class (ddl or other).", "target", "class"),
		decisions: counter("decisions_total", "Policy decisions, one per rule that matched a statement (rule \"none\" for DDL no rule matched), "+
			"by target, rule and action (allowed, warned, rewritten, rejected, allowed_by_annotation).", "target", "rule", "action"),
		ddlDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: ns, Name: "ddl_duration_seconds",
			Help:    "Time from a DDL statement's arrival to the server's answer, by target, command tag and outcome (success, error, rejected, lock_timeout, canceled).",
			Buckets: ddlBuckets}, []string{"target", "command", "outcome"}),
		lockTimeouts: counter("lock_timeout_failures_total", "Statements that failed with lock_not_available (SQLSTATE 55P03) after any retries, by target.", "target"),
		lockRetries:  counter("lock_timeout_retries_total", "Autocommit statements retried after lock_not_available (55P03), by target.", "target"),
		cleanups:     counter("concurrent_index_cleanups_total", "INVALID indexes dropped after a failed concurrent build, by target.", "target"),
		parseErrors:  counter("parse_errors_total", "Statements that looked like DDL but did not parse (rule parse-error), by target.", "target"),
		connectFailures: counter("upstream_connect_failures_total",
			"Failed attempts to connect to the upstream server (dial, TLS or no first answer in time), by target.", "target"),
		connectDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: ns, Name: "upstream_connect_duration_seconds",
			Help:    "Time to connect to the upstream server and get its first answer, failed attempts included, by target.",
			Buckets: connectBuckets}, []string{"target"}),
		migrations: counter("migrations_total", "Migrations seen, by target, migration tool and outcome: applied (the tool recorded it in its ledger), rejected (pgguard refused a statement of it), failed (the server refused one).",
			"target", "tool", "outcome"),
		relayed: counter("relayed_bytes_total", "Bytes relayed, by target and direction (client_to_server, server_to_client); counted when a connection closes.", "target", "direction"),
		reloadOK: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Name: "config_last_reload_successful",
			Help: "Whether the last policy (re)load succeeded (1) or was refused and the previous policy kept (0)."}),
		reloadTime: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Name: "config_last_reload_success_timestamp_seconds",
			Help: "Unix time of the last successful policy (re)load."}),
		reloads: counter("config_reloads_total", "Policy reload attempts, by result (success or failure).", "result"),
		queueWait: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: ns, Name: "lock_queue_wait_seconds",
			Help:    "Time statements waited outside the lock queue for a long holder of a lock on their table, by target and outcome (clear, refused, sent, closed).",
			Buckets: ddlBuckets}, []string{"target", "outcome"}),
		queueLooks: counter("lock_queue_looks_total", "Looks at the lock table while a statement waited outside the lock queue, by target.", "target"),
		queueBlockers: counter("lock_queue_blockers_total", "Statements that waited outside the lock queue, by target and the application_name of the session in their way "+
			"(the first 50 names seen; later ones count as \"other\").", "target", "application_name"),
		buildWaits: counter("concurrent_build_waits_total", "Older sessions a concurrent index build was found, before it started, to wait for in its waiting phases "+
			"(they write the table or hold a snapshot), by target and their application_name (the first 50 names seen; later ones count as \"other\").", "target", "application_name"),
		borrowed: &borrowedCollector{},
	}
	reg.MustRegister(m.clientOpen, m.clientTotal, m.serverOpen, m.serverTotal, m.inspected, m.decisions, m.ddlDuration,
		m.lockTimeouts, m.lockRetries, m.cleanups, m.parseErrors, m.connectFailures, m.connectDuration, m.relayed, m.migrations,
		m.reloadOK, m.reloadTime, m.reloads, m.queueWait, m.queueLooks, m.queueBlockers, m.buildWaits, m.borrowed)
	m.reloads.WithLabelValues("success")
	m.reloads.WithLabelValues("failure")
	m.targets.Store(&map[string]*targetMetrics{})
	return m
}

// WatchStatementMemory exports the statement memory budget that all
// sessions share: the bytes charged now (inUse), the limit, and how many
// statement messages it refused with ERROR 53200 (refused).
func WatchStatementMemory(reg prometheus.Registerer, inUse, limit, refused func() int64) {
	const ns = "pgguard"
	reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: ns, Name: "statement_memory_bytes",
			Help: "Bytes that statement messages being read and judged hold now, over all sessions, garbage not yet returned to the OS included."},
			func() float64 { return float64(inUse()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: ns, Name: "statement_memory_limit_bytes",
			Help: "The statement memory budget: --max-statement-memory less what is left for the process itself (an eighth, at most 32MB)."},
			func() float64 { return float64(limit()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: ns, Name: "statement_memory_refusals_total",
			Help: "Statement messages refused with ERROR 53200 because the statement memory budget could not hold them."},
			func() float64 { return float64(refused()) }),
	)
}

// AddTargets creates the per-target series at zero, so that they are
// exported before anything happens (rate() and alerts need a first value).
func (m *Metrics) AddTargets(names ...string) {
	for _, n := range names {
		m.target(n)
	}
}

// ConfigLoaded records the result of loading the policy at startup or on a
// reload: err nil is a success.
func (m *Metrics) ConfigLoaded(err error) {
	if err != nil {
		m.reloadOK.Set(0)
		m.reloads.WithLabelValues("failure").Inc()
		return
	}
	m.reloadOK.Set(1)
	m.reloadTime.Set(float64(time.Now().UnixNano()) / 1e9)
	m.reloads.WithLabelValues("success").Inc()
}

// target returns the children of one target, creating them on first use.
func (m *Metrics) target(name string) *targetMetrics {
	if t, ok := (*m.targets.Load())[name]; ok {
		return t
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	old := *m.targets.Load()
	if t, ok := old[name]; ok {
		return t
	}
	t := &targetMetrics{
		inspectedDDL:    m.inspected.WithLabelValues(name, "ddl"),
		inspectedOther:  m.inspected.WithLabelValues(name, "other"),
		clientOpen:      m.clientOpen.WithLabelValues(name),
		serverOpen:      m.serverOpen.WithLabelValues(name),
		clientTotal:     m.clientTotal.WithLabelValues(name),
		serverTotal:     m.serverTotal.WithLabelValues(name),
		fromClient:      m.relayed.WithLabelValues(name, "client_to_server"),
		fromServer:      m.relayed.WithLabelValues(name, "server_to_client"),
		connectFailures: m.connectFailures.WithLabelValues(name),
		connectDuration: m.connectDuration.WithLabelValues(name),
		lockTimeouts:    m.lockTimeouts.WithLabelValues(name),
		lockRetries:     m.lockRetries.WithLabelValues(name),
		cleanups:        m.cleanups.WithLabelValues(name),
		parseErrors:     m.parseErrors.WithLabelValues(name),
	}
	// The lock-queue series exist from the start, at zero, like the
	// others (the dashboard and rate() need a first value).
	for _, outcome := range []string{LockQueueClear, LockQueueRefused, LockQueueSent, LockQueueClosed} {
		m.queueWait.WithLabelValues(name, outcome)
	}
	m.queueLooks.WithLabelValues(name)
	m.queueBlockers.WithLabelValues(name, "other")
	m.buildWaits.WithLabelValues(name, "other")
	next := make(map[string]*targetMetrics, len(old)+1)
	for k, v := range old {
		next[k] = v
	}
	next[name] = t
	m.targets.Store(&next)
	return t
}

// ConnectionOpened implements Observer.
func (m *Metrics) ConnectionOpened(target string) {
	t := m.target(target)
	t.clientOpen.Inc()
	t.clientTotal.Inc()
	t.serverOpen.Inc()
	t.serverTotal.Inc()
}

// ConnectionClosed implements Observer.
func (m *Metrics) ConnectionClosed(target string, fromClient, fromServer int64) {
	t := m.target(target)
	t.clientOpen.Dec()
	t.serverOpen.Dec()
	if fromClient > 0 {
		t.fromClient.Add(float64(fromClient))
	}
	if fromServer > 0 {
		t.fromServer.Add(float64(fromServer))
	}
}

// UpstreamConnect implements Observer.
func (m *Metrics) UpstreamConnect(target string, took time.Duration, err error) {
	t := m.target(target)
	t.connectDuration.Observe(took.Seconds())
	if err != nil {
		t.connectFailures.Inc()
	}
}

// StatementsInspected implements Observer. It is on the hot path: one map
// read and two atomic adds, no allocation.
func (m *Metrics) StatementsInspected(target string, ddl, other int) {
	t := m.target(target)
	if ddl > 0 {
		t.inspectedDDL.Add(float64(ddl))
	}
	if other > 0 {
		t.inspectedOther.Add(float64(other))
	}
}

// Statement implements Observer.
func (m *Metrics) Statement(ev *StatementEvent) {
	t := m.target(ev.Target)
	if len(ev.Findings) == 0 && ev.DDL {
		m.decisions.WithLabelValues(ev.Target, "none", DecisionAllowed).Inc()
	}
	for _, f := range ev.Findings {
		m.decisions.WithLabelValues(ev.Target, f.RuleID, decisionLabel(f)).Inc()
		if f.RuleID == policy.ParseErrorRule {
			t.parseErrors.Inc()
		}
	}
	for _, w := range ev.BuildWaitsFor {
		m.buildWaits.WithLabelValues(ev.Target, m.blockerNames.label(w.ApplicationName)).Inc()
	}
	outcome := OutcomeClass(ev.Action, ev.SQLState)
	if outcome == OutcomeLockTimeout {
		t.lockTimeouts.Inc()
	}
	if ev.DDL {
		m.ddlDuration.WithLabelValues(ev.Target, commandLabel(ev.CommandTag), outcome).Observe(ev.Duration.Seconds())
	}
	if ev.Tool != "" {
		switch {
		case ev.Records && ev.SQLState == "":
			m.migrations.WithLabelValues(ev.Target, toolLabel(ev.Tool), "applied").Inc()
		case outcome == OutcomeRejected:
			m.migrations.WithLabelValues(ev.Target, toolLabel(ev.Tool), "rejected").Inc()
		case ev.DDL && ev.SQLState != "":
			m.migrations.WithLabelValues(ev.Target, toolLabel(ev.Tool), "failed").Inc()
		}
	}
}

// toolLabel keeps the tool label to the known tools.
func toolLabel(tool string) string {
	for _, t := range policy.Tools {
		if string(t) == tool {
			return tool
		}
	}
	return "unknown"
}

// LockTimeoutRetry implements Observer.
func (m *Metrics) LockTimeoutRetry(target string) { m.target(target).lockRetries.Inc() }

// ConcurrentCleanup implements Observer.
func (m *Metrics) ConcurrentCleanup(target string) { m.target(target).cleanups.Inc() }

// LockQueueWait implements Observer.
func (m *Metrics) LockQueueWait(target string, waited time.Duration, looks int, blocker, outcome string) {
	m.queueWait.WithLabelValues(target, outcome).Observe(waited.Seconds())
	m.queueLooks.WithLabelValues(target).Add(float64(looks))
	m.queueBlockers.WithLabelValues(target, m.blockerNames.label(blocker)).Inc()
}

// boundedLabels keeps a label whose values a client chooses (an
// application_name) to its first max values; later ones are "other".
type boundedLabels struct {
	mu   sync.Mutex
	seen map[string]bool
}

const maxBlockerNames = 50

func (b *boundedLabels) label(v string) string {
	if len(v) > 64 {
		v = v[:64]
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.seen[v] {
		return v
	}
	if len(b.seen) >= maxBlockerNames {
		return "other"
	}
	if b.seen == nil {
		b.seen = map[string]bool{}
	}
	b.seen[v] = true
	return v
}

// decisionLabel maps a finding to the action label of pgguard_decisions_total.
func decisionLabel(f FindingSummary) string {
	if f.AllowedBy != "" {
		return DecisionAllowedByAnnotation
	}
	switch f.Action {
	case policy.Warn.String():
		return DecisionWarned
	case policy.Rewrite.String():
		return DecisionRewritten
	case policy.Reject.String():
		return DecisionRejected
	default:
		return DecisionAllowed
	}
}

// OutcomeClass maps a statement's action and SQLSTATE to a bounded outcome
// class: success, rejected (refused by pgguard), lock_timeout (55P03),
// canceled (57014) or error.
func OutcomeClass(action, sqlstate string) string {
	switch {
	case sqlstate == "":
		return OutcomeSuccess
	case sqlstate == "42501" && action == policy.Reject.String():
		return OutcomeRejected
	case sqlstate == "55P03":
		return OutcomeLockTimeout
	case sqlstate == "57014":
		return OutcomeCanceled
	default:
		return OutcomeError
	}
}

// commandLabel keeps the words of a command tag and drops row counts and
// anything else, so that the label stays bounded ("INSERT 0 5" is "INSERT").
func commandLabel(tag string) string {
	end := 0
	for i := 0; i < len(tag) && i < 40; i++ {
		c := tag[i]
		if (c < 'A' || c > 'Z') && c != ' ' {
			break
		}
		end = i + 1
	}
	if tag = strings.TrimSpace(tag[:end]); tag == "" {
		return "none"
	}
	return tag
}

// BorrowedSizes is the state of one target that judges with another
// database's sizes (sizes_file, sizes_from).
type BorrowedSizes struct {
	Target, Source string
	// InUse is false while the target's own sizes are used instead (the
	// source cannot be read); Age is then -1.
	InUse    bool
	Age      float64 // seconds since the sizes were read from their database
	Failures int64   // reads of the source that failed
	// PlannerUnreachable counts the questions to the source's planner not
	// asked because it could not be reached (or was not tried again yet).
	PlannerUnreachable int64
}

// WatchBorrowedSizes exports, at every scrape, the age of each target's
// borrowed sizes, whether they are in use, and the failed reads of their
// source, as state reports them.
func (m *Metrics) WatchBorrowedSizes(state func() []BorrowedSizes) {
	m.borrowed.state.Store(&state)
}

// WatchBorrowedUnmapped exports, at every scrape, per borrowing target,
// the sessions judged with their own sizes because the target's
// sizes_databases names no source database for theirs.
func (m *Metrics) WatchBorrowedUnmapped(state func() map[string]int64) {
	m.borrowed.unmapped.Store(&state)
}

var (
	borrowedUnmapped = prometheus.NewDesc("pgguard_borrowed_sizes_unmapped_sessions_total",
		"Sessions of a borrowing target judged with their own database's sizes because its sizes_databases names no source database for theirs.", []string{"target"}, nil)
	borrowedAge = prometheus.NewDesc("pgguard_borrowed_sizes_age_seconds",
		"Age of the table sizes a target judges with (sizes_file, sizes_from): time since they were read from their database; -1 while none are in use.", []string{"target", "source"}, nil)
	borrowedInUse = prometheus.NewDesc("pgguard_borrowed_sizes_in_use",
		"1 while a target judges with borrowed sizes, 0 while its source cannot be read and its own database's sizes are used.", []string{"target", "source"}, nil)
	borrowedFailures = prometheus.NewDesc("pgguard_borrowed_sizes_unreachable_total",
		"Reads of a target's source of borrowed sizes that failed (connection, query, or an unreadable file).", []string{"target", "source"}, nil)
	borrowedPlannerUnreachable = prometheus.NewDesc("pgguard_borrowed_sizes_planner_unreachable_total",
		"Questions to a live source's planner (a migration's statement on a table empty in the borrowing database) not asked because the source could not be reached, or was not tried again yet after it could not: estimated as all of the source's rows.", []string{"target", "source"}, nil)
)

// borrowedCollector reports nothing until WatchBorrowedSizes.
type borrowedCollector struct {
	state    atomic.Pointer[func() []BorrowedSizes]
	unmapped atomic.Pointer[func() map[string]int64]
}

func (c *borrowedCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- borrowedAge
	ch <- borrowedInUse
	ch <- borrowedFailures
	ch <- borrowedPlannerUnreachable
	ch <- borrowedUnmapped
}

func (c *borrowedCollector) Collect(ch chan<- prometheus.Metric) {
	if unmapped := c.unmapped.Load(); unmapped != nil {
		for target, n := range (*unmapped)() {
			ch <- prometheus.MustNewConstMetric(borrowedUnmapped, prometheus.CounterValue, float64(n), target)
		}
	}
	state := c.state.Load()
	if state == nil {
		return
	}
	for _, b := range (*state)() {
		inUse := 0.0
		if b.InUse {
			inUse = 1
		}
		ch <- prometheus.MustNewConstMetric(borrowedAge, prometheus.GaugeValue, b.Age, b.Target, b.Source)
		ch <- prometheus.MustNewConstMetric(borrowedInUse, prometheus.GaugeValue, inUse, b.Target, b.Source)
		ch <- prometheus.MustNewConstMetric(borrowedFailures, prometheus.CounterValue, float64(b.Failures), b.Target, b.Source)
		ch <- prometheus.MustNewConstMetric(borrowedPlannerUnreachable, prometheus.CounterValue, float64(b.PlannerUnreachable), b.Target, b.Source)
	}
}

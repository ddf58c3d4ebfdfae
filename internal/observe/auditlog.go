package observe

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"strconv"
	"strings"
	"sync"
	"time"

	pg_query "github.com/pganalyze/pg_query_go/v6"
	"github.com/pgguard/pgguard/policy/sqltext"
)

// UnnormalisedStatement stands in the audit log for a statement that
// pg_query could not normalise: logging it raw could leak literals.
const UnnormalisedStatement = "<statement not normalised: it does not parse>"

// maxNormaliseBytes bounds the statements the audit log normalises; longer
// ones are logged as UnnormalisedStatement rather than parsed again.
const maxNormaliseBytes = 1 << 20

// AuditLog writes one JSON line per StatementEvent: every DDL statement and
// every decision other than a plain allow. Statements are normalised with
// pg_query (literals become $1, $2, ...), so the log carries no data
// values. It implements Observer; methods other than Statement do nothing.
type AuditLog struct {
	Nop
	mu sync.Mutex
	w  *bufio.Writer
}

// NewAuditLog returns an AuditLog writing to w. Each line is flushed as it
// is written; w should not block for long (a file or stderr).
func NewAuditLog(w io.Writer) *AuditLog {
	return &AuditLog{w: bufio.NewWriterSize(w, 4096)}
}

// AuditRecord is one line of the audit log.
type AuditRecord struct {
	Time            time.Time      `json:"time"`
	Target          string         `json:"target"`
	User            string         `json:"user"`
	Database        string         `json:"database"`
	ApplicationName string         `json:"application_name"`
	ClientAddr      string         `json:"client_addr"`
	Statement       string         `json:"statement"`
	DDL             bool           `json:"ddl"`
	Decision        string         `json:"decision"`
	Rules           []string       `json:"rules"`
	Findings        []AuditFinding `json:"findings,omitempty"`
	CommandTag      string         `json:"command_tag,omitempty"`
	SQLState        string         `json:"sqlstate"`
	Outcome         string         `json:"outcome"`
	DurationSeconds float64        `json:"duration_seconds"`
	Rewritten       bool           `json:"rewritten"`
	RewrittenTo     string         `json:"rewritten_to,omitempty"`
	Tool            string         `json:"tool,omitempty"`
	Migration       string         `json:"migration,omitempty"`
	// LockQueueWaitSeconds and LockQueueBlocker: the statement waited
	// outside the lock queue that long for that session (pid and
	// application_name).
	LockQueueWaitSeconds float64 `json:"lock_queue_wait_seconds,omitempty"`
	LockQueueBlocker     string  `json:"lock_queue_blocker,omitempty"`
	// ConcurrentBuildWaitsFor: the older sessions a concurrent index
	// build was found to wait for before it started.
	ConcurrentBuildWaitsFor []WaitedSession `json:"concurrent_build_waits_for,omitempty"`
}

// AuditFinding is one rule that matched, with what pgguard did about it.
type AuditFinding struct {
	Rule      string `json:"rule"`
	Action    string `json:"action"`
	AllowedBy string `json:"allowed_by,omitempty"`
}

// Statement implements Observer.
func (a *AuditLog) Statement(ev *StatementEvent) {
	rec := AuditRecord{
		Time: ev.Time.UTC(), Target: ev.Target, User: ev.User, Database: ev.Database,
		ApplicationName: ev.ApplicationName, ClientAddr: ev.ClientAddr,
		Statement: NormaliseSQL(ev.SQL), DDL: ev.DDL, Decision: ev.Action, Rules: ev.RuleIDs,
		CommandTag: commandLabel(ev.CommandTag), SQLState: ev.SQLState, Outcome: OutcomeClass(ev.Action, ev.SQLState),
		DurationSeconds: ev.Duration.Seconds(), Rewritten: ev.Rewritten != "",
		Tool: ev.Tool, Migration: ev.Migration,
		LockQueueWaitSeconds: ev.LockQueueWait.Seconds(), LockQueueBlocker: ev.LockQueueBlocker,
		ConcurrentBuildWaitsFor: ev.BuildWaitsFor,
	}
	if rec.CommandTag == "none" {
		rec.CommandTag = ""
	}
	if rec.Rules == nil {
		rec.Rules = []string{}
	}
	for _, f := range ev.Findings {
		rec.Findings = append(rec.Findings, AuditFinding{Rule: f.RuleID, Action: f.Action, AllowedBy: f.AllowedBy})
	}
	if rec.Rewritten {
		rec.RewrittenTo = NormaliseSQL(ev.Rewritten)
	}
	var line bytes.Buffer
	enc := json.NewEncoder(&line)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(rec); err != nil {
		return
	}
	// One Write per line (Encode ends it with a newline), so that lines
	// never interleave with other writers of the same stream (the logger,
	// on stderr).
	a.mu.Lock()
	defer a.mu.Unlock()
	a.w.Write(line.Bytes())
	a.w.Flush()
}

// NormaliseSQL replaces the literals of sql with $n placeholders, or
// returns UnnormalisedStatement when sql does not parse: the raw text is
// never returned. pg_query's Normalize replaces the constants of queries
// but leaves those of utility statements (a column DEFAULT, an index
// predicate, a COMMENT), so string constants it left are replaced too;
// numbers in DDL (type modifiers, CHECK bounds) are kept.
func NormaliseSQL(sql string) string {
	if len(sql) > maxNormaliseBytes {
		return UnnormalisedStatement
	}
	n, err := sqltext.PgNormalize(sql)
	if err != nil {
		return UnnormalisedStatement
	}
	scan, err := sqltext.PgScan(n)
	if err != nil {
		return UnnormalisedStatement
	}
	last := 0
	for _, tok := range scan.GetTokens() {
		if tok.GetToken() == pg_query.Token_PARAM {
			if p, err := strconv.Atoi(strings.TrimPrefix(n[tok.GetStart():tok.GetEnd()], "$")); err == nil && p > last {
				last = p
			}
		}
	}
	var b strings.Builder
	at := 0
	for _, tok := range scan.GetTokens() {
		switch tok.GetToken() {
		case pg_query.Token_SCONST, pg_query.Token_USCONST, pg_query.Token_BCONST, pg_query.Token_XCONST:
			last++
			b.WriteString(n[at:tok.GetStart()])
			b.WriteString("$" + strconv.Itoa(last))
			at = int(tok.GetEnd())
		case pg_query.Token_SQL_COMMENT, pg_query.Token_C_COMMENT:
			// Comments are free text: they can hold anything.
			b.WriteString(n[at:tok.GetStart()])
			b.WriteString("/* */")
			at = int(tok.GetEnd())
		}
	}
	if at == 0 {
		return n
	}
	b.WriteString(n[at:])
	return b.String()
}

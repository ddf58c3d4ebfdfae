package enforce

import (
	"encoding/binary"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/pgguard/pgguard/policy"

	"github.com/pgguard/pgguard/internal/observe"
	"github.com/pgguard/pgguard/internal/wire"
)

// event builds the observe.StatementEvent for the decisions on one Query or Parse
// that needs care (needsCare: DDL, or a rule matched), and counts the
// inspected statements.
func (m *Machine) event(v *verdict, sql string) *observe.StatementEvent {
	ddl := 0
	for _, sd := range v.decisions {
		if sd.Decision.DDL {
			ddl++
		}
	}
	obs := m.obs
	obs.StatementsInspected(m.state.Target, ddl, len(v.decisions)-ddl)
	ev := &observe.StatementEvent{Time: time.Now(), Target: m.state.Target, User: m.state.User, Database: m.state.Database,
		ApplicationName: m.state.CurrentApplicationName(), ClientAddr: m.state.ClientAddr, SQL: sql,
		Rewritten: v.rewritten, DDL: v.ddl, Tool: string(m.tool()),
		LockQueueWait: v.queueWait, LockQueueBlocker: v.queueBlocker, BuildWaitsFor: v.buildWaits}
	worst := policy.Allow
	for _, sd := range v.decisions {
		if sd.Decision.Action > worst {
			worst = sd.Decision.Action
		}
		for _, f := range sd.Decision.Findings {
			ev.RuleIDs = append(ev.RuleIDs, f.RuleID)
			ev.Findings = append(ev.Findings, observe.FindingSummary{RuleID: f.RuleID, Action: f.Action.String(), AllowedBy: f.AllowedBy})
		}
	}
	// A refusal of pgguard's own (lock_timeout order, lock queue) is in
	// the verdict, not in any statement's decision.
	for _, f := range v.rejects {
		if !slices.Contains(ev.RuleIDs, f.RuleID) {
			ev.RuleIDs = append(ev.RuleIDs, f.RuleID)
			ev.Findings = append(ev.Findings, observe.FindingSummary{RuleID: f.RuleID, Action: f.Action.String()})
		}
		worst = policy.Reject
	}
	ev.Action = worst.String()
	return ev
}

// tool is the migration tool behind the session, as far as pgguard knows.
func (m *Machine) tool() policy.Tool {
	if t := m.tools.Tool(); t != policy.ToolUnknown {
		return t
	}
	// The name changes rarely (SET application_name); what it says is
	// worked out once per name.
	name := m.state.CurrentApplicationName()
	if !m.appToolKnown || name != m.appToolName {
		m.appToolName, m.appTool, m.appToolKnown = name, policy.ToolFromApplicationName(name), true
	}
	return m.appTool
}

// ledgerEvent returns the event of a statement that records a migration in
// the ledger of the session's tool, or nil. Only sessions of a known tool
// pay for the look.
func (m *Machine) ledgerEvent(text string) *observe.StatementEvent {
	ev, _ := m.ledgerRecord(text)
	return ev
}

// ledgerRecord is ledgerEvent, and the number of the bind parameter that
// carries the migration's name (0 when the statement has it as a literal).
func (m *Machine) ledgerRecord(text string) (*observe.StatementEvent, int) {
	tool := m.tool()
	if tool == policy.ToolUnknown {
		return nil, 0
	}
	rec, ok := policy.RecordsMigration(text)
	if !ok {
		return nil, 0
	}
	// text may be a view of a buffer the next message reuses.
	return &observe.StatementEvent{Time: time.Now(), Target: m.state.Target, User: m.state.User, Database: m.state.Database,
		ApplicationName: m.state.CurrentApplicationName(), ClientAddr: m.state.ClientAddr, SQL: strings.Clone(text), Action: policy.Allow.String(),
		Tool: string(tool), Migration: strings.Clone(rec.Name), Records: true}, rec.Param
}

// ledgerStmt is a prepared ledger INSERT whose migration name is bind
// parameter param: each Bind of it records one migration.
type ledgerStmt struct {
	ev    *observe.StatementEvent
	param int
}

// ledgerParse is ledgerEvent for the Parse of statement name. When the
// name of the migration is a bind parameter (knex, TypeORM, golang-migrate,
// Rails, Flyway), it returns nil and the event waits for the statement's
// Bind (ledgerBind), which may come in a later batch (lib/pq) or several
// times (a named statement: Rails, pgjdbc past prepareThreshold).
func (m *Machine) ledgerParse(name []byte, text string) *observe.StatementEvent {
	ev, param := m.ledgerRecord(text)
	if ev == nil || param == 0 {
		return ev
	}
	if m.ledgerStmts == nil {
		m.ledgerStmts = make(map[string]ledgerStmt)
	}
	m.ledgerStmts[string(name)] = ledgerStmt{ev: ev, param: param}
	return nil
}

// ledgerBind queues the event of a Bind of a prepared ledger INSERT, with
// the migration's name from its bind parameter.
func (m *Machine) ledgerBind(stmt, body []byte) {
	ls, ok := m.ledgerStmts[string(stmt)]
	if !ok {
		return
	}
	ev := *ls.ev
	ev.Time, ev.Migration = time.Now(), bindParam(body, ls.param)
	m.amend(m.batchPoint(), func(b *syncPoint) { b.events = append(b.events, &ev) })
}

// maxMigrationName bounds a migration name taken from a bind parameter.
const maxMigrationName = 255

// bindParam returns bind parameter n (from 1) of a Bind body as text: a
// text-format value as it is, a binary one as text when it is printable
// UTF-8 and as an integer when it is a 4- or 8-byte one; "" when absent,
// NULL or neither.
func bindParam(body []byte, n int) string {
	_, rest, ok := wire.CStringBytes(body) // portal
	if ok {
		_, rest, ok = wire.CStringBytes(rest) // statement
	}
	if !ok || len(rest) < 2 {
		return ""
	}
	nf := int(binary.BigEndian.Uint16(rest))
	rest = rest[2:]
	if len(rest) < 2*nf+2 {
		return ""
	}
	format := uint16(0)
	switch {
	case nf == 1:
		format = binary.BigEndian.Uint16(rest)
	case nf >= n:
		format = binary.BigEndian.Uint16(rest[2*(n-1):])
	}
	rest = rest[2*nf:]
	np := int(binary.BigEndian.Uint16(rest))
	rest = rest[2:]
	if n > np {
		return ""
	}
	for i := 1; ; i++ {
		if len(rest) < 4 {
			return ""
		}
		l := int(int32(binary.BigEndian.Uint32(rest)))
		rest = rest[4:]
		if l < 0 {
			if i == n {
				return ""
			}
			continue
		}
		if l > len(rest) {
			return ""
		}
		if i < n {
			rest = rest[l:]
			continue
		}
		v := rest[:l]
		switch {
		case format == 0 || utf8.Valid(v) && printable(v):
			if len(v) > maxMigrationName {
				v = v[:maxMigrationName]
			}
			return string(v)
		case l == 4:
			return strconv.FormatInt(int64(int32(binary.BigEndian.Uint32(v))), 10)
		case l == 8:
			return strconv.FormatInt(int64(binary.BigEndian.Uint64(v)), 10)
		}
		return ""
	}
}

func printable(v []byte) bool {
	for _, r := range string(v) {
		if !unicode.IsPrint(r) {
			return false
		}
	}
	return len(v) > 0
}

// committed lists the DDL statements that committed in autocommit since the
// session's tool last recorded a migration: what a migration run without a
// transaction leaves behind when a later statement of it is refused.
type committed struct {
	mu   sync.Mutex
	list []string
}

const maxCommittedListed = 20

func (c *committed) add(sql string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(sql) > 300 {
		sql = sql[:300] + "…"
	}
	if len(c.list) == maxCommittedListed {
		c.list = c.list[1:]
	}
	c.list = append(c.list, sql)
}

func (c *committed) reset() {
	c.mu.Lock()
	c.list = nil
	c.mu.Unlock()
}

func (c *committed) get() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.list...)
}

// report sends a finished event to the log and the observer.
func (m *Machine) report(ev *observe.StatementEvent, tag, sqlstate string) {
	ev.Duration = time.Since(ev.Time)
	ev.CommandTag, ev.SQLState = tag, sqlstate
	switch {
	case ev.Records && sqlstate == "":
		m.committed.reset()
	case ev.DDL && sqlstate == "" && m.state.TxStatus() == 'I' && ev.Action != policy.Reject.String() && !policy.MentionsLedger(ev.SQL):
		// The tool's own bookkeeping (CREATE TABLE "SequelizeMeta") is not
		// part of the migration the user must undo.
		m.committed.add(ev.SQL)
	}
	if ev.Records {
		m.obs.Statement(ev)
		return
	}
	if ev.Action != policy.Allow.String() || len(ev.RuleIDs) > 0 {
		m.log.Info("policy decision", "action", ev.Action, "rules", ev.RuleIDs, "user", ev.User,
			"database", ev.Database, "application_name", ev.ApplicationName, "rewritten", ev.Rewritten != "", "sqlstate", sqlstate)
	}
	m.obs.Statement(ev)
}

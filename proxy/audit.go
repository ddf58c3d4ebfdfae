package proxy

import (
	"strings"
	"sync"
	"time"

	"github.com/pgguard/pgguard/policy"

	"github.com/pgguard/pgguard/internal/observe"
)

// event builds the observe.StatementEvent for the decisions on one Query or Parse
// that needs care (needsCare: DDL, or a rule matched), and counts the
// inspected statements.
func (s *Session) event(v *verdict, sql string) *observe.StatementEvent {
	ddl := 0
	for _, sd := range v.decisions {
		if sd.Decision.DDL {
			ddl++
		}
	}
	obs := s.srv.hooks()
	obs.StatementsInspected(s.target.Name, ddl, len(v.decisions)-ddl)
	ev := &observe.StatementEvent{Time: time.Now(), Target: s.target.Name, User: s.state.User, Database: s.state.Database,
		ApplicationName: s.state.ApplicationName, ClientAddr: s.state.ClientAddr, SQL: sql,
		Rewritten: v.rewritten, DDL: v.ddl, Tool: string(s.tool())}
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
	ev.Action = worst.String()
	return ev
}

// tool is the migration tool behind the session, as far as pgguard knows.
func (s *Session) tool() policy.Tool {
	if t := s.tools.Tool(); t != policy.ToolUnknown {
		return t
	}
	return policy.ToolFromApplicationName(s.state.ApplicationName)
}

// ledgerEvent returns the event of a statement that records a migration in
// the ledger of the session's tool, or nil. Only sessions of a known tool
// pay for the look.
func (s *Session) ledgerEvent(text string) *observe.StatementEvent {
	tool := s.tool()
	if tool == policy.ToolUnknown {
		return nil
	}
	rec, ok := policy.RecordsMigration(text)
	if !ok {
		return nil
	}
	// text may be a view of a buffer the next message reuses.
	return &observe.StatementEvent{Time: time.Now(), Target: s.target.Name, User: s.state.User, Database: s.state.Database,
		ApplicationName: s.state.ApplicationName, ClientAddr: s.state.ClientAddr, SQL: strings.Clone(text), Action: policy.Allow.String(),
		Tool: string(tool), Migration: strings.Clone(rec.Name), Records: true}
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
func (s *Session) report(ev *observe.StatementEvent, tag, sqlstate string) {
	ev.Duration = time.Since(ev.Time)
	ev.CommandTag, ev.SQLState = tag, sqlstate
	switch {
	case ev.Records && sqlstate == "":
		s.committed.reset()
	case ev.DDL && sqlstate == "" && s.state.TxStatus() == 'I' && ev.Action != policy.Reject.String():
		s.committed.add(ev.SQL)
	}
	if ev.Records {
		s.srv.hooks().Statement(ev)
		return
	}
	if ev.Action != policy.Allow.String() || len(ev.RuleIDs) > 0 {
		s.log.Info("policy decision", "action", ev.Action, "rules", ev.RuleIDs, "user", ev.User,
			"database", ev.Database, "application_name", ev.ApplicationName, "rewritten", ev.Rewritten != "", "sqlstate", sqlstate)
	}
	s.srv.hooks().Statement(ev)
}

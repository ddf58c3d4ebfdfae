package proxy

import (
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
		Rewritten: v.rewritten, DDL: v.ddl}
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

// report sends a finished event to the log and the observer.
func (s *Session) report(ev *observe.StatementEvent, tag, sqlstate string) {
	ev.Duration = time.Since(ev.Time)
	ev.CommandTag, ev.SQLState = tag, sqlstate
	if ev.Action != policy.Allow.String() || len(ev.RuleIDs) > 0 {
		s.log.Info("policy decision", "action", ev.Action, "rules", ev.RuleIDs, "user", ev.User,
			"database", ev.Database, "application_name", ev.ApplicationName, "rewritten", ev.Rewritten != "", "sqlstate", sqlstate)
	}
	s.srv.hooks().Statement(ev)
}

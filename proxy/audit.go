package proxy

import (
	"github.com/pgguard/pgguard/policy"
)

// audit logs and reports the decisions on one Query or Parse that were not
// plain allows of non-DDL.
func (s *Session) audit(v *verdict, sql string) {
	if !v.ddl && v.reject == nil && v.notices == nil && !anyFinding(v) {
		return
	}
	ev := &StatementEvent{Target: s.target.Name, User: s.state.User, Database: s.state.Database,
		ApplicationName: s.state.ApplicationName, ClientAddr: s.state.ClientAddr, SQL: sql,
		Rewritten: v.rewritten, DDL: v.ddl, Action: policy.Allow.String()}
	worst := policy.Allow
	for _, sd := range v.decisions {
		if sd.Decision.Action > worst {
			worst = sd.Decision.Action
		}
		for _, f := range sd.Decision.Findings {
			ev.RuleIDs = append(ev.RuleIDs, f.RuleID)
		}
	}
	ev.Action = worst.String()
	if worst != policy.Allow || len(ev.RuleIDs) > 0 {
		s.log.Info("policy decision", "action", ev.Action, "rules", ev.RuleIDs, "user", ev.User,
			"database", ev.Database, "application_name", ev.ApplicationName, "rewritten", ev.Rewritten != "")
	}
	s.srv.hooks().Statement(ev)
}

func anyFinding(v *verdict) bool {
	for _, sd := range v.decisions {
		if len(sd.Decision.Findings) > 0 {
			return true
		}
	}
	return false
}

package rules

import (
	"fmt"
	"github.com/pgguard/pgguard/policy"
	"strings"

	"github.com/pgguard/pgguard/policy/sqltext"

	pg_query "github.com/pganalyze/pg_query_go/v6"
)

func init() {
	policy.Register(policy.Rule{
		ID:       "lock-timeout",
		Summary:  "a session must not turn lock_timeout off or raise it above max_lock_timeout",
		Default:  policy.LevelReject,
		Keywords: []string{"lock_timeout", "set_config", "pg_settings"},
		Check:    checkLockTimeout,
		// No Verify: a session setting, not a lock on a table. RESET
		// lock_timeout (and RESET ALL, DISCARD ALL, SET ... TO DEFAULT) is
		// fine because the proxy sets the session default itself at startup
		// (options=-c lock_timeout=...), which is what RESET returns to.
	})
}

func checkLockTimeout(c *policy.Check, n *pg_query.Node) {
	if c.LockTimeoutScope == policy.ScopeDDL {
		// The session's own lock_timeout is its business: the proxy
		// checks it with the server right before each statement that
		// blocks writes and gives that statement the policy's own when
		// the session's is off or too high. Only a function's SET clause
		// still matters: the statements of its body run with it, after
		// that check.
		checkSetClauses(c, n, true)
		return
	}
	if s := n.GetVariableSetStmt(); s != nil {
		checkSetLockTimeout(c, s, "")
		return
	}
	checkSetClauses(c, n, false)
	if u := n.GetUpdateStmt(); u != nil && u.Relation != nil && u.Relation.Relname == "pg_settings" {
		checkPgSettingsUpdate(c, u)
		return
	}
	if !sqltext.ContainsFold(c.Text, "set_config") {
		return
	}
	policy.Walk(n, func(x *pg_query.Node) bool {
		if x.GetCreateFunctionStmt() != nil {
			return false // the engine judges function bodies statement by statement
		}
		fc := x.GetFuncCall()
		if fc == nil || len(fc.Args) < 2 {
			return true
		}
		if name := policy.NameList(fc.Funcname); name != "set_config" && name != "pg_catalog.set_config" {
			return true
		}
		name, isConst := policy.ConstString(fc.Args[0])
		if !isConst && fc.Args[0].GetParamRef() == nil {
			// set_config('lock_' || 'timeout', ...): a name computed in the
			// statement itself can only be there to hide what it sets.
			c.Report(policy.Report{
				Message: "set_config() with a setting name computed at run time may turn lock_timeout off, and pgguard cannot tell which setting it changes.",
				Hint:    "-- name the setting as a literal: SELECT set_config('<setting>', '<value>', false);",
			})
			return true
		}
		if !strings.EqualFold(name, "lock_timeout") {
			return true
		}
		v, ok := policy.ConstString(fc.Args[1])
		lockTimeoutValue(c, "set_config('lock_timeout', ...)", v, ok)
		return true
	})
}

// checkSetLockTimeout judges SET lock_timeout = value (where says where
// the SET is, "" for the statement itself).
func checkSetLockTimeout(c *policy.Check, s *pg_query.VariableSetStmt, where string) {
	if s == nil || !strings.EqualFold(s.Name, "lock_timeout") || s.Kind != pg_query.VariableSetKind_VAR_SET_VALUE || len(s.Args) != 1 {
		return
	}
	verb := "SET"
	if s.IsLocal {
		verb = "SET LOCAL"
	}
	v, ok := policy.ConstString(s.Args[0])
	lockTimeoutValue(c, verb+" lock_timeout"+where, v, ok)
}

// checkPgSettingsUpdate judges UPDATE pg_settings SET setting = ... WHERE
// name = 'lock_timeout', which PostgreSQL turns into set_config().
func checkPgSettingsUpdate(c *policy.Check, u *pg_query.UpdateStmt) {
	names := 0
	lock := false
	policy.Walk(u.WhereClause, func(x *pg_query.Node) bool {
		if e := x.GetAExpr(); e != nil {
			// Only name = 'x' and name IN ('x', ...) name their settings;
			// LIKE 'lock_t%', a regular expression or any other operator
			// may match lock_timeout.
			op := policy.NameList(e.Name)
			if !(e.Kind == pg_query.A_Expr_Kind_AEXPR_OP && op == "=") && e.Kind != pg_query.A_Expr_Kind_AEXPR_IN {
				lock = true
			}
		}
		if v, ok := policy.ConstString(x); ok {
			names++
			lock = lock || strings.EqualFold(v, "lock_timeout")
		}
		return true
	})
	if !lock && names > 0 {
		return
	}
	for _, t := range u.TargetList {
		rt := t.GetResTarget()
		if rt == nil || rt.Name != "setting" || rt.Val == nil {
			continue
		}
		v, ok := policy.ConstString(rt.Val)
		lockTimeoutValue(c, "UPDATE pg_settings SET setting", v, ok)
	}
}

// lockTimeoutValue reports a value that is not a constant, is 0 (off) or
// exceeds MaxLockTimeout.
func lockTimeoutValue(c *policy.Check, what string, value string, isConst bool) {
	max := c.MaxLockTimeout
	hint := fmt.Sprintf("SET lock_timeout = '%s';  -- the default; any value from 1ms up to %s (max_lock_timeout) is allowed", c.LockTimeout, max)
	if !isConst {
		c.Report(policy.Report{
			Message: fmt.Sprintf("%s sets lock_timeout to a value computed at run time, which pgguard cannot check against the %s maximum.", what, max),
			Hint:    hint,
		})
		return
	}
	d, err := policy.ParseLockTimeout(value)
	switch {
	case err != nil:
		return // the server rejects it
	case d <= 0:
		c.Report(policy.Report{
			Message: fmt.Sprintf("%s = '%s' turns the lock timeout off, so a statement waiting for a lock would make every later query on that table queue behind it.", what, value),
			Hint:    hint,
		})
	case d > max:
		c.Report(policy.Report{
			Message: fmt.Sprintf("%s = '%s' is above the %s maximum, so a statement waiting for a lock could make every later query on that table queue behind it for up to %s.", what, value, max, d),
			Hint:    hint,
		})
	}
}

// checkSetClauses checks lock_timeout in a SET clause: CREATE/ALTER
// FUNCTION ... SET lock_timeout = 0 applies the value whenever the function
// runs; ALTER ROLE/DATABASE ... SET (unless functionsOnly) to every later
// session that does not set it.
func checkSetClauses(c *policy.Check, n *pg_query.Node, functionsOnly bool) {
	var where string
	var sets []*pg_query.Node
	switch s := n.GetNode().(type) {
	case *pg_query.Node_CreateFunctionStmt:
		where, sets = " in the function's SET clause", s.CreateFunctionStmt.Options
	case *pg_query.Node_AlterFunctionStmt:
		where, sets = " in the function's SET clause", s.AlterFunctionStmt.Actions
	case *pg_query.Node_AlterRoleSetStmt:
		if functionsOnly {
			return
		}
		where = " for the role"
		sets = []*pg_query.Node{{Node: &pg_query.Node_VariableSetStmt{VariableSetStmt: s.AlterRoleSetStmt.Setstmt}}}
	case *pg_query.Node_AlterDatabaseSetStmt:
		if functionsOnly {
			return
		}
		where = " for the database"
		sets = []*pg_query.Node{{Node: &pg_query.Node_VariableSetStmt{VariableSetStmt: s.AlterDatabaseSetStmt.Setstmt}}}
	}
	for _, o := range sets {
		vs := o.GetVariableSetStmt()
		if de := o.GetDefElem(); de != nil && de.Defname == "set" {
			vs = de.GetArg().GetVariableSetStmt()
		}
		if vs != nil {
			checkSetLockTimeout(c, vs, where)
		}
	}
}

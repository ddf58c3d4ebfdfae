package policy

import (
	"fmt"
	"sort"

	"gopkg.in/yaml.v3"
)

// validate checks what decoding alone cannot: ranges, cross-field limits
// and rule ids. Positions come from the decoder's path index.
func (d *decoder) validate(c *Config) {
	at := func(path string) *yaml.Node {
		if n := d.values[path]; n != nil {
			return n
		}
		return d.values[""]
	}
	if v := c.AssumePGVersion; v < 10 || v > 18 {
		d.errorf(at("assume_pg_version"), "assume_pg_version: %d is not a supported PostgreSQL major version (10 to 18)", v)
	}
	if c.LockTimeout == 0 {
		d.errorf(at("lock_timeout"), "lock_timeout: must not be 0, which turns the timeout off")
	}
	if c.MaxLockTimeout < c.LockTimeout {
		d.errorf(at("max_lock_timeout"), "max_lock_timeout: %v is less than lock_timeout (%v)", c.MaxLockTimeout, c.LockTimeout)
	}
	if c.LockQueue.Deadline < 0 {
		d.errorf(at("lock_queue.deadline"), "lock_queue.deadline: must not be negative (0 turns the look off)")
	}
	if c.LockQueue.Threshold < 0 {
		d.errorf(at("lock_queue.threshold"), "lock_queue.threshold: must not be negative")
	}
	r := c.LockTimeoutRetries
	if r.Attempts < 1 {
		d.errorf(at("lock_timeout_retries.attempts"), "lock_timeout_retries.attempts: must be at least 1 (1 means no retry)")
	}
	if r.MaxBackoff < r.InitialBackoff {
		d.errorf(at("lock_timeout_retries.max_backoff"), "lock_timeout_retries.max_backoff: %v is less than initial_backoff (%v)", r.MaxBackoff, r.InitialBackoff)
	}
	if c.LargeDML.MaxRows < 1 {
		d.errorf(at("large_dml.max_rows"), "large_dml.max_rows: must be at least 1")
	}
	if c.SizeThresholds.Rows < 0 {
		d.errorf(at("size_thresholds.rows"), "size_thresholds.rows: must not be negative")
	}
	if c.MaxStatementBytes < 1024 {
		d.errorf(at("max_statement_bytes"), "max_statement_bytes: %d is too small (at least 1kB)", c.MaxStatementBytes)
	}
	for i, role := range c.Annotations.AllowedRoles {
		if role == "" {
			d.errorf(at(fmt.Sprintf("annotations.allowed_roles[%d]", i)), "annotations.allowed_roles: empty role name")
		}
	}
	d.validateRules(c.Rules, "rules")
	names := map[string]bool{}
	for i, p := range c.Profiles {
		path := fmt.Sprintf("profiles[%d]", i)
		switch {
		case p.Name == "":
			d.errorf(at(path), "%s: a profile needs a name", path)
		case names[p.Name]:
			d.errorf(at(path+".name"), "%s: profile name %q is used twice", path, p.Name)
		}
		names[p.Name] = true
		for key, list := range map[string][]string{"database": p.Match.Database, "user": p.Match.User, "application_name": p.Match.ApplicationName} {
			for j, pat := range list {
				if pat == "" {
					d.errorf(at(fmt.Sprintf("%s.match.%s[%d]", path, key, j)), "%s.match.%s: empty pattern", path, key)
				}
			}
		}
		d.validateRules(p.Rules, path+".rules")
	}
	for i, t := range c.Proxy.Targets {
		if t.Profile != "" && !names[t.Profile] {
			d.errorf(at(fmt.Sprintf("proxy.targets[%d].profile", i)), "proxy.targets[%d].profile: no profile named %q", i, t.Profile)
		}
	}
	sortErrors(d.errs)
}

func (d *decoder) validateRules(rules map[string]Level, path string) {
	ids := make([]string, 0, len(rules))
	for id := range rules {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		r, ok := LookupRule(id)
		if !ok {
			d.errorf(d.keys[path+"."+id], "%s: unknown rule %q (known rules: %s)", path, id, ruleIDs())
			continue
		}
		if rules[id] == LevelRewrite && !r.CanRewrite {
			d.errorf(d.values[path+"."+id], "%s.%s: this rule cannot rewrite; use reject, warn or off", path, id)
		}
	}
}

// sortErrors orders errors by position.
func sortErrors(errs []error) {
	sort.SliceStable(errs, func(i, j int) bool {
		a, aok := errs[i].(*PositionError)
		b, bok := errs[j].(*PositionError)
		if !aok || !bok {
			return false
		}
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		return a.Column < b.Column
	})
}

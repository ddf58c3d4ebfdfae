package tools

import (
	"path/filepath"
	"testing"

	"github.com/pgguard/pgguard/policy"
)

// Rails' ActiveRecord (Debian's ruby-activerecord and ruby-pg), driven as
// `rails db:migrate` drives it: each migration in a transaction of its own
// unless it says disable_ddl_transaction!. The ledger is schema_migrations
// (the name golang-migrate uses too) plus ar_internal_metadata.
func TestRails(t *testing.T) {
	t.Parallel()
	needPG(t)
	ruby := lookPath(t, "ruby", "apt-get install ruby-activerecord ruby-pg")
	if r := runTool(t, ".", baseEnv(), ruby, "-e", `require "active_record"; require "pg"`); r.code != 0 {
		missing(t, "ActiveRecord and ruby-pg", nil, "apt-get install ruby-activerecord ruby-pg")
	}
	project := need(t, "testdata/rails", "the Rails project", "testdata")
	runScenarios(t, tool{
		name:         "rails",
		sense:        policy.ToolRails,
		ledger:       "SELECT version FROM schema_migrations ORDER BY version",
		idiom:        "disable_ddl_transaction!",
		printsDetail: true,
		migrate: func(t *testing.T, db, sc string) result {
			env := baseEnv("DATABASE_URL="+url(db), "MIGRATIONS="+filepath.Join(project, sc))
			return runTool(t, project, env, ruby, "migrate.rb")
		},
	}, railsScenarios())
}

// railsScenarios are the common scenarios with the ledger as Rails keeps
// it: versions, not names.
func railsScenarios() []scenario {
	scs := scenarios()
	for i := range scs {
		for j := range scs[i].ledger {
			scs[i].ledger[j] = "2026010100000" + string(rune('1'+j))
		}
	}
	return scs
}

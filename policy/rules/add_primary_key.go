package rules

import (
	pg_query "github.com/pganalyze/pg_query_go/v6"
	"github.com/pgguard/pgguard/policy"
)

func init() {
	policy.Register(policy.Rule{
		ID:            "add-primary-key",
		Summary:       "ADD PRIMARY KEY without USING INDEX builds the index (and checks NOT NULL) under ACCESS EXCLUSIVE",
		Default:       policy.LevelReject,
		SizeDependent: true,
		Check: func(c *policy.Check, n *pg_query.Node) {
			checkAddIndexConstraint(c, n, pg_query.ConstrType_CONSTR_PRIMARY)
		},
		Verify: &policy.Verification{
			Setup:     []string{"ALTER TABLE ledger DROP CONSTRAINT ledger_pkey"},
			Statement: "ALTER TABLE ledger ADD PRIMARY KEY (id)",
			Lock:      policy.LockAccessExclusive,
			Work:      policy.WorkScan,
		},
	})
}

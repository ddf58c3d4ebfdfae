package policy

import (
	pg_query "github.com/pganalyze/pg_query_go/v6"
)

func init() {
	Register(Rule{
		ID:            "add-primary-key",
		Summary:       "ADD PRIMARY KEY without USING INDEX builds the index (and checks NOT NULL) under ACCESS EXCLUSIVE",
		Default:       LevelReject,
		SizeDependent: true,
		Check: func(c *Check, n *pg_query.Node) {
			checkAddIndexConstraint(c, n, pg_query.ConstrType_CONSTR_PRIMARY)
		},
		Verify: &Verification{
			Setup:     []string{"ALTER TABLE ledger DROP CONSTRAINT ledger_pkey"},
			Statement: "ALTER TABLE ledger ADD PRIMARY KEY (id)",
			Lock:      LockAccessExclusive,
			Work:      WorkScan,
		},
	})
}

package policy

import (
	"context"
	"strings"
	"testing"
)

func (f *fakeCatalog) PartitionKey(_ context.Context, table string) (string, []string, bool) {
	key, ok := f.partKeys[table]
	if !ok {
		return "", nil, false
	}
	strategy, cols, _ := strings.Cut(key, ":")
	return strategy, strings.Split(cols, ","), true
}

func (f *fakeCatalog) HasValidatedCheckOn(_ context.Context, table string, _ []string) (bool, bool) {
	return f.boundChecks[table], true
}

var _ PartitionCatalog = (*fakeCatalog)(nil)

// TestDecideQueryValidateSameTransaction: DecideQuery remembers the
// constraints an earlier statement of the Query added NOT VALID, until a
// COMMIT.
func TestDecideQueryValidateSameTransaction(t *testing.T) {
	e := fixtureEngine(t, nil)
	ctx := context.Background()
	for _, tc := range []struct {
		query string
		want  bool
	}{
		{`ALTER TABLE orders ADD CONSTRAINT orders_total_positive CHECK (total > 0) NOT VALID;
		  ALTER TABLE orders VALIDATE CONSTRAINT orders_total_positive`, true},
		{`ALTER TABLE "JournalLine" ADD FOREIGN KEY ("accountId") REFERENCES "Account" (id) NOT VALID;
		  ALTER TABLE "JournalLine" VALIDATE CONSTRAINT "JournalLine_accountId_fkey"`, true},
		{`ALTER TABLE orders ADD CONSTRAINT orders_total_positive CHECK (total > 0) NOT VALID; COMMIT;
		  ALTER TABLE orders VALIDATE CONSTRAINT orders_total_positive`, false},
		{`ALTER TABLE orders ADD CONSTRAINT orders_total_positive CHECK (total > 0) NOT VALID;
		  ALTER TABLE refunds VALIDATE CONSTRAINT orders_total_positive`, false},
	} {
		ds, err := e.DecideQuery(ctx, tc.query, &Context{Alone: true})
		if err != nil {
			t.Fatal(err)
		}
		got := false
		for _, f := range ds[len(ds)-1].Decision.Findings {
			if f.RuleID == "validate-in-same-transaction" {
				got = true
			}
		}
		if got != tc.want {
			t.Errorf("%s: finding %v, want %v", tc.query, got, tc.want)
		}
	}
}

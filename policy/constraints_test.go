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

func TestNoRewriteTypeChange(t *testing.T) {
	for _, tc := range []struct {
		old, new string
		version  int
		tz       string
		safe     bool
	}{
		{"character varying(20)", "varchar(40)", 15, "", true},
		{"character varying(20)", "varchar(10)", 15, "", false},
		{"character varying(20)", "text", 15, "", true},
		{"character varying(20)", "varchar", 15, "", true},
		{"text", "varchar(20)", 15, "", false},
		{"numeric(10,2)", "numeric(12,2)", 15, "", true},
		{"numeric(10,2)", "numeric(12,3)", 15, "", false},
		{"numeric(10,2)", "numeric", 15, "", true},
		{"numeric", "numeric(10,2)", 15, "", false},
		{"integer", "bigint", 15, "", false},
		{"timestamp without time zone", "timestamptz", 15, "UTC", true},
		{"timestamp with time zone", "timestamp", 15, "Etc/UTC", true},
		{"timestamp with time zone", "timestamp", 15, "Africa/Johannesburg", false},
		{"timestamp with time zone", "timestamp", 11, "UTC", false},
	} {
		got := noRewriteTypeChange(tc.old, parseTypeName(tc.new), tc.version, tc.tz) != ""
		if got != tc.safe {
			t.Errorf("%s -> %s (pg %d, %s): no rewrite %v, want %v", tc.old, tc.new, tc.version, tc.tz, got, tc.safe)
		}
	}
}

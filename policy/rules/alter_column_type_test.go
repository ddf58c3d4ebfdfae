package rules

import "testing"

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

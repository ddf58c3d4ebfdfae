package pgcatalog

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/pgguard/pgguard/internal/testkit/pgtest"
)

// TestRedteamPlannerRunsRangeSubtypeDiff: production has a table with a
// column of a range type of its own (CREATE TYPE ... AS RANGE, which any
// role may create), whose SUBTYPE_DIFF is a PL/pgSQL function. A uat
// statement compares that column with a constant of the range's built-in
// subtype: `during @> 1.5::float8`. The operator (anyrange @> anyelement),
// the constant's type and the cast are all built-ins, and the view's
// pg_depend names only the table's column, so the question is planned;
// to estimate @> the planner's rangesel interpolates in the column's
// bounds histogram with the range's subtype_diff, running production's
// own function with the constant uat's user chose.
func TestRedteamPlannerRunsRangeSubtypeDiff(t *testing.T) {
	pg, logPath := loggedServer(t, "uat", "production")
	for _, db := range []string{"uat", "production"} {
		env := strings.TrimSuffix(db, "uction")
		setup := []string{
			"CREATE FUNCTION public.fdiff(a float8, b float8) RETURNS float8 IMMUTABLE LANGUAGE plpgsql AS $$BEGIN RAISE LOG '" +
				env + "-sidefx fdiff %', a; RETURN a - b; END$$",
			"CREATE TYPE public.floatrange AS RANGE (subtype = float8, subtype_diff = public.fdiff)",
			"CREATE TABLE slots (id int PRIMARY KEY, during public.floatrange)",
			"GRANT ALL ON ALL TABLES IN SCHEMA public TO " + pgtest.SCRAMUser,
		}
		if err := pg.ExecAs(pgtest.SuperUser, db, setup...); err != nil {
			t.Fatal(err)
		}
	}
	if err := pg.ExecAs(pgtest.SuperUser, "production",
		"INSERT INTO slots SELECT g, public.floatrange(g::float8, g + 1 + (g % 17)) FROM generate_series(1, 3000) g", "ANALYZE"); err != nil {
		t.Fatal(err)
	}
	if err := pg.ExecAs(pgtest.SuperUser, "uat", "ANALYZE"); err != nil {
		t.Fatal(err)
	}
	uat := connect(t, pg, "uat")
	ctx := context.Background()
	b := borrowFromProduction(t, pg, uat)
	time.Sleep(time.Second) // setup's own lines (ANALYZE, INSERT) in the log first
	before, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	sql := "UPDATE slots SET id = id WHERE during @> 1234.5::float8"
	rows, ok := b.EstimateRows(ctx, sql)
	t.Logf("%s: %d (%v)", sql, rows, ok)
	if ok && rows < 3000 {
		t.Errorf("%s: %d rows; a question over a column of production's own range type is not provably safe, want all of production's 3,000", sql, rows)
	}
	time.Sleep(time.Second)
	log, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(log[len(before):]), "\n") {
		if strings.Contains(line, "prod-sidefx") {
			t.Errorf("production ran a function of its own for a uat statement: %s", line)
			break
		}
	}
}

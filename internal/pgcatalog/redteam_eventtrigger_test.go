package pgcatalog

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/pgguard/pgguard/internal/testkit/pgtest"
)

// TestRedteamPlannerQuestionFiresEventTriggers: production parses the
// question as CREATE TEMPORARY VIEW, a DDL command, in a read-write
// transaction: production's event triggers (a DDL audit, as many
// production databases have) fire for it, running production's own code
// for a uat statement, with the uat statement's text in current_query().
// Here the audit logs the command and numbers it from a sequence, which
// the rollback does not give back: production's log holds the uat
// statement's literal and its sequence moved. A database with an event
// trigger for CREATE VIEW cannot be asked (all of production's rows).
func TestRedteamPlannerQuestionFiresEventTriggers(t *testing.T) {
	pg, logPath := loggedServer(t, "uat", "production")
	for _, db := range []string{"uat", "production"} {
		if err := pg.ExecAs(pgtest.SuperUser, db,
			"CREATE TABLE accounts (id int PRIMARY KEY, status text)",
			"GRANT ALL ON ALL TABLES IN SCHEMA public TO "+pgtest.SCRAMUser); err != nil {
			t.Fatal(err)
		}
	}
	if err := pg.ExecAs(pgtest.SuperUser, "production",
		"CREATE SEQUENCE public.ddl_audit_seq",
		"GRANT SELECT, USAGE ON SEQUENCE public.ddl_audit_seq TO PUBLIC",
		"CREATE FUNCTION public.ddl_audit() RETURNS event_trigger LANGUAGE plpgsql AS $$BEGIN"+
			" RAISE LOG 'prod-sidefx ddl_audit % %', pg_catalog.nextval('public.ddl_audit_seq'), pg_catalog.current_query(); END$$",
		"CREATE EVENT TRIGGER ddl_audit ON ddl_command_end EXECUTE FUNCTION public.ddl_audit()",
		"INSERT INTO accounts SELECT g, 'open' FROM generate_series(1, 1500) g", "ANALYZE"); err != nil {
		t.Fatal(err)
	}
	if err := pg.ExecAs(pgtest.SuperUser, "uat", "ANALYZE"); err != nil {
		t.Fatal(err)
	}
	prod, uat := connect(t, pg, "production"), connect(t, pg, "uat")
	ctx := context.Background()
	b := borrowFromProduction(t, pg, uat)
	time.Sleep(time.Second)
	before, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	sql := "UPDATE accounts SET status = 'uat-literal-audit' WHERE id < 10 AND status <> 'uat-literal-audit'"
	rows, ok := b.EstimateRows(ctx, sql)
	t.Logf("%s: %d (%v)", sql, rows, ok)
	if ok && rows < 1500 {
		t.Errorf("%s: %d rows; production's event trigger fires for the question, want all of production's 1,500", sql, rows)
	}
	seq, ok := prod.Query("SELECT last_value::text || ' ' || is_called::text FROM public.ddl_audit_seq")
	if !ok || len(seq) != 1 {
		t.Fatal(prod.Err)
	}
	if *seq[0][0] != "1 false" {
		t.Errorf("production's DDL audit sequence moved for a uat statement's question: %s", *seq[0][0])
	}
	time.Sleep(time.Second)
	log, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(log[len(before):]), "\n") {
		if strings.Contains(line, "prod-sidefx") {
			t.Errorf("production ran its event trigger for a uat statement: %s", line)
		}
	}
}

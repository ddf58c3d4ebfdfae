package policy

import (
	"context"
	"github.com/pgguard/pgguard/policy/sqltext"
	"path/filepath"
	"strings"
	"testing"

	pg_query "github.com/pganalyze/pg_query_go/v6"
)

func testEngine(t *testing.T, yaml string) *Engine {
	t.Helper()
	cfg, err := ParseConfig([]byte(yaml), "test.yaml")
	if err != nil {
		t.Fatal(err)
	}
	e, err := NewEngine(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func ruleIDsOf(d Decision) string {
	var ids []string
	for _, f := range d.Findings {
		ids = append(ids, f.RuleID+"="+f.Action.String())
	}
	return strings.Join(ids, ",")
}

func TestDecide(t *testing.T) {
	const strict = "annotations: {allowed_roles: [migrator]}\nprofiles:\n" +
		"  - {name: uat, match: {database: ['*_uat']}, mode: warn}\n" +
		"  - {name: audit, match: {application_name: ['audit*']}, mode: audit}\n" +
		"  - {name: lenient, match: {user: [lenient]}, rules: {rename-column: warn, create-index: reject}}\n"
	tests := []struct {
		name       string
		yaml       string
		sql        string
		sc         Context
		action     Action
		findings   string
		rewritten  string
		lock       string
		ddl        bool
		concurrent bool
	}{
		{name: "select", sql: "SELECT * FROM ledger", action: Allow},
		{name: "rewrite", sql: "CREATE INDEX i ON t (c)", sc: Context{Alone: true}, action: Rewrite,
			findings: "create-index=rewrite", rewritten: "CREATE INDEX CONCURRENTLY i ON t (c)", lock: "SHARE", ddl: true, concurrent: true},
		{name: "warn mode does not rewrite", sql: "CREATE INDEX i ON t (c)", sc: Context{Alone: true, Database: "shop_uat"},
			action: Warn, findings: "create-index=warn", lock: "SHARE", ddl: true},
		{name: "audit mode keeps findings", sql: "ALTER TABLE t RENAME COLUMN a TO b", sc: Context{ApplicationName: "audit-job"},
			action: Allow, findings: "rename-column=allow", lock: "ACCESS EXCLUSIVE", ddl: true},
		{name: "profile levels", sql: "ALTER TABLE t RENAME COLUMN a TO b", sc: Context{User: "lenient"},
			action: Warn, findings: "rename-column=warn", lock: "ACCESS EXCLUSIVE", ddl: true},
		{name: "profile forced by name", sql: "CREATE INDEX i ON t (c)", sc: Context{Alone: true, Profile: "lenient"},
			action: Reject, findings: "create-index=reject", lock: "SHARE", ddl: true},
		{name: "annotation", sql: "-- pgguard:allow rename-column reason=\"unused\"\nALTER TABLE t RENAME COLUMN a TO b",
			sc: Context{User: "migrator"}, action: Allow, findings: "rename-column=allow", lock: "ACCESS EXCLUSIVE", ddl: true},
		{name: "annotation without reason", sql: "/* pgguard:allow rename-column */ ALTER TABLE t RENAME COLUMN a TO b",
			sc: Context{User: "migrator"}, action: Reject, findings: "rename-column=reject,bad-annotation=reject", lock: "ACCESS EXCLUSIVE", ddl: true},
		{name: "annotation with unknown rule", sql: "-- pgguard:allow drop-everything reason=\"x\"\nCREATE TABLE t (a int)",
			sc: Context{User: "migrator"}, action: Reject, findings: "bad-annotation=reject", ddl: true},
		{name: "parse error", sql: "ALTER TABLE t FROBNICATE", action: Reject, findings: "parse-error=reject", ddl: true},
		{name: "parse error allowed", yaml: "on_parse_error: allow", sql: "ALTER TABLE t FROBNICATE", action: Allow, ddl: true},
		{name: "DML parse error is not judged", sql: "UPDATE t SET", action: Allow},
		{name: "too long", yaml: "max_statement_bytes: 1kB", sql: "CREATE TABLE t (a int DEFAULT " + strings.Repeat("1+", 1000) + "1)",
			action: Reject, findings: "parse-error=reject", ddl: true},
		{name: "deep nesting", sql: "CREATE VIEW v AS SELECT " + strings.Repeat("(", 100000) + "1" + strings.Repeat(")", 100000),
			action: Reject, findings: "parse-error=reject", ddl: true},
		{name: "DO block", sql: "DO $$ BEGIN ALTER TABLE t RENAME COLUMN a TO b; END $$", action: Reject,
			findings: "rename-column=reject", lock: "ACCESS EXCLUSIVE", ddl: true},
		{name: "DO block literal EXECUTE", sql: "DO $$ BEGIN EXECUTE 'CREATE INDEX i ON t (c)'; END $$", sc: Context{Alone: true},
			action: Reject, findings: "create-index=reject", lock: "SHARE", ddl: true},
		{name: "DO block dynamic EXECUTE", sql: "DO $$ DECLARE n text := 't'; BEGIN EXECUTE format('DROP TABLE %I', n); END $$", action: Reject,
			findings: "dynamic-sql=reject", ddl: true},
		// format() of a literal with literal arguments is the statement it
		// makes, judged as such.
		{name: "DO block constant format EXECUTE", sql: "DO $$ BEGIN EXECUTE format('DROP TABLE %I', 't'); END $$", action: Reject,
			findings: "drop-table=reject", lock: "ACCESS EXCLUSIVE", ddl: true},
		{name: "dynamic EXECUTE warned", yaml: "on_dynamic_sql: warn", sql: "DO $$ BEGIN EXECUTE 'x' || 'y'; END $$", action: Warn,
			findings: "dynamic-sql=warn", ddl: true},
		{name: "plpgsql function", sql: "CREATE FUNCTION f(n int) RETURNS void LANGUAGE plpgsql AS $$ BEGIN IF n > 0 THEN ALTER TABLE t ALTER COLUMN c SET NOT NULL; END IF; END $$",
			action: Reject, findings: "set-not-null=reject", lock: "ACCESS EXCLUSIVE", ddl: true},
		{name: "sql function body", yaml: "lock_timeout_scope: session\n",
			sql:    "CREATE PROCEDURE p() LANGUAGE sql BEGIN ATOMIC SELECT set_config('lock_timeout', '0', false); END",
			action: Reject, findings: "lock-timeout=reject", ddl: true},
		// Under scope ddl the session's own lock_timeout is its business:
		// the proxy gives each statement that blocks writes the policy's.
		{name: "sql function body, scope ddl", sql: "CREATE PROCEDURE p() LANGUAGE sql BEGIN ATOMIC SELECT set_config('lock_timeout', '0', false); END",
			action: Allow, ddl: true},
		{name: "set off, scope ddl", sql: "SET lock_timeout = 0", action: Allow},
		{name: "function SET clause, scope ddl", sql: "CREATE FUNCTION f() RETURNS void LANGUAGE sql SET lock_timeout = 0 AS 'SELECT 1'",
			action: Reject, findings: "lock-timeout=reject", ddl: true},
		{name: "bad plpgsql", sql: "DO $$ BEGIN x := ; END $$", action: Reject, findings: "parse-error=reject", ddl: true},
		{name: "rule off", yaml: "rules: {rename-column: off}", sql: "ALTER TABLE t RENAME COLUMN a TO b", action: Allow, lock: "ACCESS EXCLUSIVE", ddl: true},
		{name: "select into creates", sql: "SELECT 1 AS a INTO new_t", action: Allow, lock: "ACCESS SHARE", ddl: true},
		{name: "version from server", sql: "ALTER TABLE t ADD COLUMN c int DEFAULT 0", sc: Context{ServerVersion: 100023},
			action: Reject, findings: "add-column-volatile-default=reject", lock: "ACCESS EXCLUSIVE", ddl: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := testEngine(t, strict+tc.yaml)
			sc := tc.sc
			d := e.Decide(context.Background(), sqltext.Statement{Text: tc.sql}, &sc)
			if d.Action != tc.action || ruleIDsOf(d) != tc.findings || d.Rewritten != tc.rewritten ||
				d.Lock != tc.lock || d.DDL != tc.ddl || d.Concurrent != tc.concurrent {
				t.Errorf("got action=%s findings=%q rewritten=%q lock=%q ddl=%v concurrent=%v\nwant action=%s findings=%q rewritten=%q lock=%q ddl=%v concurrent=%v\n%+v",
					d.Action, ruleIDsOf(d), d.Rewritten, d.Lock, d.DDL, d.Concurrent,
					tc.action, tc.findings, tc.rewritten, tc.lock, tc.ddl, tc.concurrent, d.Findings)
			}
		})
	}
}

func TestDecideQuery(t *testing.T) {
	e := testEngine(t, "")
	got, err := e.DecideQuery(context.Background(),
		"CREATE TABLE refunds (id bigint, order_id bigint);\nCREATE INDEX ON refunds (order_id);\nCREATE INDEX ON orders (id)",
		&Context{Alone: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 {
		t.Fatalf("%d decisions", len(got))
	}
	if d := got[0].Decision; len(d.CreatesTables) != 1 || d.CreatesTables[0] != "refunds" {
		t.Errorf("CreatesTables = %q", d.CreatesTables)
	}
	if d := got[1].Decision; d.Action != Allow {
		t.Errorf("index on a table created in the same query: %s %+v", d.Action, d.Findings)
	}
	if d := got[2].Decision; d.Action != Reject || got[2].Statement.Line != 3 {
		t.Errorf("index on an existing table in a multi-statement query: %s (line %d), want reject (not alone)", d.Action, got[2].Statement.Line)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := e.DecideQuery(ctx, "SELECT 1", nil); err == nil {
		t.Error("no error for a cancelled context")
	}
}

func TestRegisterPanics(t *testing.T) {
	check := func(*Check, *pg_query.Node) {}
	for _, r := range []Rule{
		{ID: "create-index", Summary: "dup", Check: check},
		{ID: "Bad_ID", Summary: "x", Check: check},
		{ID: "parse-error", Summary: "x", Check: check},
		{ID: "no-check", Summary: "x"},
		{ID: "bad-rewrite", Summary: "x", Check: check, Default: LevelRewrite},
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("Register(%q) did not panic", r.ID)
				}
			}()
			Register(r)
		}()
	}
}

func TestGlobMatch(t *testing.T) {
	for _, c := range []struct {
		p, s string
		want bool
	}{
		{"*", "", true}, {"*_uat", "shop_uat", true}, {"*_uat", "shop_prod", false}, {"a?c", "abc", true},
		{"a*b*c", "axxbyyc", true}, {"a*b*c", "axxbyy", false}, {"sequelize*", "sequelize-cli", true}, {"x", "xy", false},
	} {
		if got := globMatch(c.p, c.s); got != c.want {
			t.Errorf("globMatch(%q, %q) = %v", c.p, c.s, got)
		}
	}
}

// TestPlain checks the fast path on every fixture statement and on the
// traffic it exists for: application queries pass without allocating;
// DDL, refused statements and annotated ones do not pass.
func TestPlain(t *testing.T) {
	e := fixtureEngine(t, nil)
	ctx := context.Background()
	passed := 0
	for _, rule := range Rules() {
		for _, f := range []string{"ok.sql", "bad.sql"} {
			for _, s := range readFixture(t, filepath.Join("testdata", rule.ID, f)) {
				ds, err := e.DecideQuery(ctx, s.Text, &Context{Alone: true})
				if err != nil {
					t.Fatal(err)
				}
				checkPlain(t, e, s.Text, ds)
				if _, plain := e.Plain(s.Text); plain {
					passed++
				}
				// Plain knows no session: the proxy does not use it for DML
				// while the transaction holds an ACCESS EXCLUSIVE lock, nor
				// for the DML that PlainDML reports in a migration's session.
				if sc := fixtureContext(t, s.Text); f == "bad.sql" && !HoldsExclusive(sc) {
					if _, plain, dml := e.PlainDML(s.Text, false); plain && !(sc.Migration && dml) {
						t.Errorf("%s/bad.sql:%d passes as plain: %s", rule.ID, s.Line, firstLine(s.Text))
					}
				}
			}
		}
	}
	if passed == 0 {
		t.Error("no fixture statement passed as plain; the check above proved nothing")
	}
	app := []string{
		"SELECT abalance FROM pgbench_accounts WHERE aid = 42;",
		"UPDATE pgbench_accounts SET abalance = abalance + 1 WHERE aid = 7",
		"INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES (1, 2, 3, 4, CURRENT_TIMESTAMP);",
		"BEGIN; SELECT 1; COMMIT",
		"SET application_name = 'web'",
	}
	for _, q := range app {
		n, plain := e.Plain(q)
		if !plain || n != len(sqltext.Split(q)) {
			t.Errorf("Plain(%q) = %d, %v; want %d, true", q, n, plain, len(sqltext.Split(q)))
		}
		ds, _ := e.DecideQuery(ctx, q, &Context{Alone: true})
		checkPlain(t, e, q, ds)
		if a := testing.AllocsPerRun(100, func() { e.Plain(q) }); a != 0 {
			t.Errorf("Plain(%q) allocates %.0f times", q, a)
		}
	}
	for _, q := range []string{
		"CREATE INDEX ON t (a)",
		"SELECT 1; ALTER TABLE t ADD COLUMN c int",
		"SET lock_timeout = 0",
		"SELECT * INTO t2 FROM t",
		"-- pgguard:allow truncate reason=\"x\"\nTRUNCATE t",
	} {
		if _, plain := e.Plain(q); plain {
			t.Errorf("Plain(%q) passes", q)
		}
	}
}

package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/pgguard/pgguard/internal/pgcatalog"
	"github.com/pgguard/pgguard/internal/testkit/pgtest"
	"github.com/pgguard/pgguard/policy"
)

// borrowSchema is the same in both databases; the rows differ.
var borrowSchema = []string{
	"CREATE TABLE accounts (id bigint PRIMARY KEY, email text, status text, amount int, note text)",
	"CREATE TABLE orders (id bigint PRIMARY KEY, account_id bigint, total int)",
	"CREATE DOMAIN ledger_amount AS int",
	"CREATE TABLE ledger (id bigint, amount ledger_amount)",
	"CREATE TABLE events (at date NOT NULL, n int) PARTITION BY RANGE (at)",
	"CREATE TABLE events_2026 PARTITION OF events FOR VALUES FROM ('2026-01-01') TO ('2027-01-01')",
	"CREATE TABLE events_2027 (at date NOT NULL, n int)",
	"CREATE TABLE settings (k text PRIMARY KEY, v text)",
}

// borrowRows fills the tables with n rows each (settings always with 5).
func borrowRows(n int) []string {
	g := fmt.Sprintf("generate_series(1, %d) g", n)
	return []string{
		"INSERT INTO accounts SELECT g, 'user' || g || '@example.com', CASE WHEN g % 4 = 0 THEN 'closed' ELSE 'open' END, g % 1000, NULL FROM " + g,
		"INSERT INTO orders SELECT g, g, g % 100 FROM " + g,
		"INSERT INTO ledger SELECT g, g % 100 FROM " + g,
		"INSERT INTO events SELECT date '2026-01-01' + (g % 365), g FROM " + g,
		"INSERT INTO events_2027 SELECT date '2027-01-01' + (g % 365), g FROM " + g,
		"INSERT INTO settings SELECT 'k' || g, 'v' FROM generate_series(1, 5) g",
		// The inserts' counts reach the statistics before VACUUM sets them
		// (PostgreSQL 15 flushes a backend's counts at most once a second).
		"SELECT pg_catalog.pg_stat_force_next_flush()",
		"VACUUM ANALYZE",
	}
}

// borrowCase is one statement of a size-dependent rule.
type borrowCase struct {
	rule    string   // the rule whose decision depends on the size
	sql     string   // the statement
	inTx    bool     // run inside BEGIN ... ROLLBACK
	earlier []string // statements before it in the same transaction
	cleanup string   // run in both databases after it (for a statement that ran)
	small   bool     // allowed everywhere (small, or few rows, in production too)
	// lintCannot says why lint --sizes cannot decide as the proxy does;
	// it must then decide as lint without --sizes (allow).
	lintCannot string
}

var borrowCases = []borrowCase{
	{rule: "create-index", sql: "CREATE INDEX accounts_email_idx ON accounts (email)", cleanup: "DROP INDEX IF EXISTS accounts_email_idx"},
	{rule: "create-index", sql: "CREATE INDEX settings_v_idx ON settings (v)", cleanup: "DROP INDEX IF EXISTS settings_v_idx", small: true},
	{rule: "add-foreign-key", sql: "ALTER TABLE orders ADD CONSTRAINT orders_account_fk FOREIGN KEY (account_id) REFERENCES accounts (id)", inTx: true},
	{rule: "large-dml", sql: "UPDATE accounts SET note = 'x'", inTx: true},
	{rule: "large-dml", sql: "DELETE FROM ledger", inTx: true},
	// Selective: the share of UAT's rows (8 of 10 open, 2 closed) of
	// production's 300,000 (225,000 open, 75,000 closed) against the
	// limit of 100,000.
	{rule: "large-dml", sql: "UPDATE accounts SET note = 'x' WHERE status = 'open'", inTx: true,
		lintCannot: "a sizes file has no statistics of the values (it holds none), so lint cannot estimate a selective WHERE and lets it pass, as without --sizes"},
	{rule: "large-dml", sql: "DELETE FROM accounts WHERE status = 'closed'", inTx: true, small: true},
	{rule: "add-column-volatile-default", sql: "ALTER TABLE accounts ADD COLUMN token uuid DEFAULT gen_random_uuid()", inTx: true},
	{rule: "alter-column-type", sql: "ALTER TABLE accounts ALTER COLUMN amount TYPE bigint", inTx: true},
	{rule: "set-not-null", sql: "ALTER TABLE accounts ALTER COLUMN email SET NOT NULL", inTx: true},
	{rule: "add-check-constraint", sql: "ALTER TABLE accounts ADD CONSTRAINT amount_positive CHECK (amount >= 0)", inTx: true},
	{rule: "add-unique-constraint", sql: "ALTER TABLE accounts ADD CONSTRAINT accounts_email_key UNIQUE (email)", inTx: true},
	{rule: "add-primary-key", sql: "ALTER TABLE ledger ADD PRIMARY KEY (id)", inTx: true},
	{rule: "add-exclude-constraint", sql: "ALTER TABLE ledger ADD CONSTRAINT ledger_excl EXCLUDE USING btree (id WITH =)", inTx: true},
	{rule: "add-column-serial-identity-generated", sql: "ALTER TABLE ledger ADD COLUMN seq bigserial", inTx: true},
	{rule: "attach-partition", sql: "ALTER TABLE events ATTACH PARTITION events_2027 FOR VALUES FROM ('2027-01-01') TO ('2028-01-01')", inTx: true},
	{rule: "cluster", sql: "CLUSTER accounts USING accounts_pkey", inTx: true},
	{rule: "vacuum-full", sql: "VACUUM FULL ledger"},
	{rule: "reindex", sql: "REINDEX TABLE orders"},
	{rule: "set-logged", sql: "ALTER TABLE ledger SET UNLOGGED", inTx: true},
	{rule: "set-access-method", sql: "ALTER TABLE ledger SET ACCESS METHOD heap", inTx: true},
	{rule: "set-tablespace", sql: "ALTER TABLE ledger SET TABLESPACE pg_default", inTx: true},
	{rule: "alter-domain-constraint", sql: "ALTER DOMAIN ledger_amount ADD CONSTRAINT ledger_amount_nonnegative CHECK (VALUE >= 0)", inTx: true},
	{rule: "validate-in-same-transaction", sql: "ALTER TABLE orders VALIDATE CONSTRAINT orders_total_check", inTx: true,
		earlier: []string{"ALTER TABLE orders ADD CONSTRAINT orders_total_check CHECK (total >= 0) NOT VALID"}},
}

// verdictOf runs a case on one session through pgguard.
func verdictOf(t *testing.T, s *agreeSession, c borrowCase) agreeVerdict {
	t.Helper()
	if len(c.earlier) == 0 {
		return s.verdict(t, agreeContext{inTransaction: c.inTx}, c.sql)
	}
	s.must(t, "BEGIN")
	for _, e := range c.earlier {
		s.must(t, e)
	}
	return s.verdict(t, agreeContext{}, c.sql)
}

// lintWithSizes decides a case as pgguard lint [--in-transaction] --sizes
// FILE would.
func lintWithSizes(t *testing.T, e *policy.Engine, sizes *pgcatalog.Sizes, c borrowCase) agreeVerdict {
	t.Helper()
	var text strings.Builder
	for _, sql := range c.earlier {
		fmt.Fprintf(&text, "%s;\n", sql)
	}
	skip := len(c.earlier)
	fmt.Fprintf(&text, "%s;\n", c.sql)
	o := &lintOptions{inTransaction: c.inTx, format: "json", files: []string{"-"}, sizes: sizes}
	findings, err := lintFile(e, o, "-", strings.NewReader(text.String()))
	if err != nil {
		t.Fatal(err)
	}
	var v agreeVerdict
	for _, f := range findings {
		if f.Line <= skip {
			continue
		}
		a := map[string]policy.Action{"allow": policy.Allow, "warn": policy.Warn, "rewrite": policy.Rewrite, "reject": policy.Reject}[f.Action]
		v.add(f.Rule, a, f.Message)
	}
	v.finish()
	return v
}

// TestBorrowedSizesDecideAsProduction is issue 23's test: a 10-row "uat"
// and a 300,000-row "production" database behind one pgguard with
// targets production (monitor: as the SCRAM role), uat (sizes_from:
// production), uat-file (sizes_file: an export of production) and uat-own
// (no borrowing). Every size-dependent rule decides in uat and uat-file
// exactly as in production, where uat-own decides otherwise (the size
// matters); lint --sizes with the export decides as the proxy on
// production; /metrics and /readiness show the sizes' age.
func TestBorrowedSizesDecideAsProduction(t *testing.T) {
	pg := pgtest.Must(t, pgtest.Options{})
	prodRows := 300000
	if testing.Short() {
		prodRows = 120000
	}
	sizesDatabase(t, pg, "production", append(borrowSchema, borrowRows(prodRows)...)...)
	sizesDatabase(t, pg, "uat", append(append(borrowSchema, borrowRows(10)...),
		"CREATE TABLE uat_only (id int, v int)", "INSERT INTO uat_only SELECT g, g FROM generate_series(1, 10) g", "ANALYZE uat_only")...)
	file := exportSizes(t, pg, "production")

	t.Setenv("PGGUARD_TEST_MONITOR_PASSWORD", pgtest.Password)
	addrs := map[string]string{}
	var targets strings.Builder
	for _, name := range []string{"production", "uat", "uat-file", "uat-own"} {
		addrs[name] = freeAddr(t)
		fmt.Fprintf(&targets, "    - name: %s\n      listen: %s\n      upstream: %s\n", name, addrs[name], pg.Addr())
		switch name {
		case "production":
			fmt.Fprintf(&targets, "      monitor: {user: %s, database: production, password_env: PGGUARD_TEST_MONITOR_PASSWORD}\n", pgtest.SCRAMUser)
		case "uat":
			targets.WriteString("      sizes_from: production\n      sizes_refresh: 10s\n")
		case "uat-file":
			fmt.Fprintf(&targets, "      sizes_file: %s\n", file)
		}
	}
	admin := freeAddr(t)
	rules := filepath.Join(t.TempDir(), "rules.yaml")
	if err := os.WriteFile(rules, []byte("proxy:\n  admin: "+admin+"\n  targets:\n"+targets.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	bin := startBinary(t, "--rules", rules, "--log-format", "json")
	waitHTTP(t, "http://"+admin+"/startup", 200)
	waitUntil(t, "production's sizes read by uat", 20*time.Second, func() bool {
		return sum(scrape(t, admin), "pgguard_borrowed_sizes_in_use", "target", "uat") == 1
	})

	sessions := map[string]*agreeSession{}
	for name, addr := range addrs {
		db := "uat"
		if name == "production" {
			db = "production"
		}
		s := dialAgree(t, fmt.Sprintf("postgres://%s:%s@%s/%s?sslmode=disable", pgtest.SCRAMUser, pgtest.Password, addr, db))
		defer s.conn.Close(context.Background())
		sessions[name] = s
	}
	sizes, err := pgcatalog.LoadSizes(file)
	if err != nil {
		t.Fatal(err)
	}
	eng := agreeEngine(t, nil)
	ruled := map[string]bool{}
	for _, c := range borrowCases {
		got := map[string]agreeVerdict{}
		for _, name := range []string{"production", "uat", "uat-file", "uat-own"} {
			got[name] = verdictOf(t, sessions[name], c)
		}
		lint := lintWithSizes(t, eng, sizes, c)
		if c.cleanup != "" {
			if err := pg.ExecAs(pgtest.SCRAMUser, "production", c.cleanup); err != nil {
				t.Fatal(err)
			}
			if err := pg.ExecAs(pgtest.SCRAMUser, "uat", c.cleanup); err != nil {
				t.Fatal(err)
			}
		}
		prod := got["production"]
		t.Logf("%s: %s\n  production %s, uat %s, uat-file %s, uat-own %s, lint --sizes %s", c.rule, c.sql,
			prod.key(), got["uat"].key(), got["uat-file"].key(), got["uat-own"].key(), lint.key())
		for _, name := range []string{"uat", "uat-file"} {
			if got[name].key() != prod.key() {
				t.Errorf("%s: %s decides %s, production %s\n%s", c.sql, name, got[name].key(), prod.key(), got[name].details())
			}
		}
		switch {
		case c.lintCannot != "" && lint.action != policy.Allow:
			t.Errorf("%s: lint --sizes decides %s; documented as unable (%s), it should allow as without --sizes", c.sql, lint.key(), c.lintCannot)
		case c.lintCannot == "" && lint.key() != prod.key():
			t.Errorf("%s: lint --sizes decides %s, the proxy on production %s\n%s%s", c.sql, lint.key(), prod.key(), lint.details(), prod.details())
		}
		mentions := strings.Contains(prod.key(), c.rule+"@")
		switch {
		case c.small && (prod.action != policy.Allow || got["uat-own"].action != policy.Allow):
			t.Errorf("%s: small everywhere, yet production %s, uat-own %s", c.sql, prod.key(), got["uat-own"].key())
		case !c.small && (!mentions || got["uat-own"].key() == prod.key()):
			t.Errorf("%s: not a size-dependent decision of %s: production %s, uat-own %s", c.sql, c.rule, prod.key(), got["uat-own"].key())
		case !c.small:
			ruled[c.rule] = true
		}
	}
	for _, r := range policy.Rules() {
		if r.SizeDependent && !ruled[r.ID] {
			t.Errorf("size-dependent rule %s has no case here", r.ID)
		}
	}

	// The extended protocol as drivers and tools send it, the statement
	// behind the BEGIN of its batch (judged ahead, proxy/enforce/warm.go)
	// and on its own: uat refuses as production does.
	for _, name := range []string{"production", "uat", "uat-file", "uat-own"} {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		b := &pgconn.Batch{}
		b.ExecParams("BEGIN", nil, nil, nil, nil)
		b.ExecParams("ALTER TABLE accounts ALTER COLUMN amount TYPE bigint", nil, nil, nil, nil)
		b.ExecParams("COMMIT", nil, nil, nil, nil)
		_, batchErr := sessions[name].conn.ExecBatch(ctx, b).ReadAll()
		if _, err := sessions[name].conn.Exec(ctx, "ROLLBACK").ReadAll(); err != nil { // after a refusal, the block is open
			t.Fatal(err)
		}
		single := sessions[name].conn.ExecParams(ctx, "ALTER TABLE orders ADD CONSTRAINT orders_account_fk FOREIGN KEY (account_id) REFERENCES accounts (id) NOT VALID", nil, nil, nil, nil).Read().Err
		cancel()
		pg.ExecAs(pgtest.SCRAMUser, "uat", "ALTER TABLE orders DROP CONSTRAINT IF EXISTS orders_account_fk", "ALTER TABLE accounts ALTER COLUMN amount TYPE int")
		pg.ExecAs(pgtest.SCRAMUser, "production", "ALTER TABLE orders DROP CONSTRAINT IF EXISTS orders_account_fk")
		refused := batchErr != nil && strings.Contains(batchErr.Error(), "alter-column-type")
		if refused != (name != "uat-own") || !refused && batchErr != nil {
			t.Errorf("%s: a type change behind another statement of its batch: %v", name, batchErr)
		}
		// NOT VALID: allowed everywhere, whatever the size.
		if single != nil {
			t.Errorf("%s: ADD FOREIGN KEY ... NOT VALID: %v", name, single)
		}
	}

	// A table production lacks is judged with uat's own size.
	only := borrowCase{rule: "create-index", sql: "CREATE INDEX uat_only_v ON uat_only (v)", cleanup: "DROP INDEX IF EXISTS uat_only_v"}
	if v := verdictOf(t, sessions["uat"], only); v.action != policy.Allow {
		t.Errorf("a table only uat has: %s, want allowed (its own 10 rows)", v.key())
	}
	pg.ExecAs(pgtest.SCRAMUser, "uat", only.cleanup)

	// The refusal's detail says where the size came from.
	pgErr, _ := sessions["uat"].exec(t, "ALTER TABLE accounts ALTER COLUMN amount TYPE bigint")
	if pgErr == nil || !strings.Contains(pgErr.Detail, "accounts holds about 300000 rows") || !strings.Contains(pgErr.Detail, "in production (sizes as of ") {
		t.Errorf("uat's refusal does not say the size is production's: %+v\ndetail: %s", pgErr, pgErr.Detail)
	}

	// Metrics and readiness.
	ss := scrape(t, admin)
	for _, target := range []string{"uat", "uat-file"} {
		age := sum(ss, "pgguard_borrowed_sizes_age_seconds", "target", target)
		if age < 0 || age > 600 {
			t.Errorf("%s: borrowed sizes age %v", target, age)
		}
	}
	resp := readiness(t, admin)
	for _, want := range []string{"sizes uat: from production, as of ", "sizes uat-file: from " + file} {
		if !strings.Contains(resp, want) {
			t.Errorf("/readiness lacks %q:\n%s", want, resp)
		}
	}
	// No literal of a statement in the log.
	if strings.Contains(bin.logText(), "example.com") || strings.Contains(bin.logText(), "'x'") {
		t.Errorf("a literal of a client's statement is in the log:\n%s", bin.logText())
	}
}

// readiness returns the body of /readiness.
func readiness(t *testing.T, admin string) string {
	t.Helper()
	resp, err := http.Get("http://" + admin + "/readiness")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// TestBorrowedSizesSourceDown: when the source target cannot be read (here
// its monitor role's password is wrong), the borrowing target's sessions
// are judged with their own database's sizes, never as small; the log
// warns, the unreachable counter counts and /readiness says so.
func TestBorrowedSizesSourceDown(t *testing.T) {
	pg := pgtest.Must(t, pgtest.Options{})
	sizesDatabase(t, pg, "production", borrowSchema...)
	sizesDatabase(t, pg, "uat", append(borrowSchema, borrowRows(10)...)...)
	if err := pg.ExecAs(pgtest.SCRAMUser, "uat", "CREATE TABLE big AS SELECT g AS id FROM generate_series(1, 20000) g", "ANALYZE big"); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PGGUARD_TEST_MONITOR_PASSWORD", "not-the-password")
	uat, admin := freeAddr(t), freeAddr(t)
	rules := filepath.Join(t.TempDir(), "rules.yaml")
	cfg := fmt.Sprintf("proxy:\n  admin: %s\n  targets:\n"+
		"    - {name: production, listen: %s, upstream: %s, monitor: {user: %s, database: production, password_env: PGGUARD_TEST_MONITOR_PASSWORD}}\n"+
		"    - {name: uat, listen: %s, upstream: %s, sizes_from: production, sizes_refresh: 10s}\n",
		admin, freeAddr(t), pg.Addr(), pgtest.SCRAMUser, uat, pg.Addr())
	if err := os.WriteFile(rules, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	bin := startBinary(t, "--rules", rules, "--log-format", "json")
	waitHTTP(t, "http://"+admin+"/startup", 200)
	waitUntil(t, "a failed read of production's sizes", 20*time.Second, func() bool {
		return sum(scrape(t, admin), "pgguard_borrowed_sizes_unreachable_total", "target", "uat") >= 1
	})
	if v := sum(scrape(t, admin), "pgguard_borrowed_sizes_in_use", "target", "uat"); v != 0 {
		t.Errorf("in use: %v", v)
	}
	s := dialAgree(t, fmt.Sprintf("postgres://%s:%s@%s/uat?sslmode=disable", pgtest.SCRAMUser, pgtest.Password, uat))
	defer s.conn.Close(context.Background())
	// Its own sizes: a small table passes, a large one is refused.
	small := verdictOf(t, s, borrowCase{sql: "ALTER TABLE accounts ALTER COLUMN amount TYPE bigint", inTx: true})
	large := verdictOf(t, s, borrowCase{sql: "ALTER TABLE big ALTER COLUMN id TYPE bigint", inTx: true})
	if small.action != policy.Allow || large.action != policy.Reject {
		t.Errorf("with the source down: small %s, large %s; want uat's own sizes to decide", small.key(), large.key())
	}
	if !bin.logged("borrowed sizes: cannot read them") {
		t.Errorf("no warning logged:\n%s", bin.logText())
	}
	if r := readiness(t, admin); !strings.Contains(r, "sizes uat: production cannot be read, the target's own sizes are used") {
		t.Errorf("/readiness:\n%s", r)
	}
}

// TestBorrowingSettings: check-config refuses a sizes_from or sizes_file
// that cannot work, naming the setting.
func TestBorrowingSettings(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "sizes.json")
	if err := os.WriteFile(good, []byte(`{"format": 1, "database": "production", "exported_at": "2026-12-07T10:42:00Z", "relations": []}`+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PGGUARD_TEST_EMPTY", "")
	prod := "    - {name: production, listen: 127.0.0.1:7001, upstream: 127.0.0.1:5432%s}\n"
	uat := "    - {name: uat, listen: 127.0.0.1:7002, upstream: 127.0.0.1:5432, %s}\n"
	monitor := ", monitor: {user: pgguard_monitor, password_file: " + good + "}"
	for _, c := range []struct{ prod, uat, want string }{
		{monitor, "sizes_from: production", ""},
		{"", "sizes_file: " + good, ""},
		{"", "sizes_from: production", "has no monitor: block"},
		{monitor, "sizes_from: staging", `no target named "staging"`},
		{monitor, "sizes_from: uat", "cannot borrow its own sizes"},
		{monitor, "sizes_from: production, sizes_file: " + good, "not both"},
		{monitor, "sizes_from: production, sizes_refresh: 1s", "at least 10s"},
		{"", "sizes_file: " + filepath.Join(dir, "missing.json"), "sizes_file: open"},
		{", monitor: {user: m, password_env: PGGUARD_TEST_EMPTY}", "sizes_from: production", "PGGUARD_TEST_EMPTY is empty"},
		{monitor, "sizes_from: production, sizes_databases: {billing_uat: billing, ledger_uat: ledger}", ""},
		{"", "sizes_file: " + good + ", sizes_databases: {uat: production}", ""},
		{"", "sizes_file: " + good + ", sizes_databases: {billing_uat: billing}", "holds the sizes of database production only"},
		{monitor, "sizes_from: production, sizes_databases: {}", "sizes_databases: empty"},
		{monitor, "sizes_from: production, sizes_databases: {billing_uat: ''}", "empty database name"},
		{monitor, "sizes_databases: {billing_uat: billing}", "set without sizes_from or sizes_file"},
	} {
		rules := filepath.Join(dir, "rules.yaml")
		body := "proxy:\n  targets:\n" + fmt.Sprintf(prod, c.prod) + fmt.Sprintf(uat, c.uat)
		if err := os.WriteFile(rules, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		code, _, errOut := runCmd(t, "", "check-config", rules)
		switch {
		case c.want == "" && code != 0:
			t.Errorf("%s: exit %d: %s", body, code, errOut)
		case c.want != "" && (code != 2 || !strings.Contains(errOut, c.want)):
			t.Errorf("%s: exit %d, %q; want 2 and %q", body, code, errOut, c.want)
		}
	}
}
